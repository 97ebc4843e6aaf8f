//! A private pair of services can be hung, resumed, stopped and relaunched with its data,
//! while the shared services go on serving other tests.

use std::time::Duration;

use aqs_testkit::private::{PrivateServices, Service};

fn ping(url: &str) -> bool {
    let address = url.trim_start_matches("http://");
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    use std::io::{Read, Write};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(format!("GET /ping HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("Ok.")
}

#[tokio::test]
async fn a_private_pair_hangs_resumes_and_keeps_its_data_across_a_relaunch() {
    let Some(services) = PrivateServices::start() else {
        return;
    };
    let shared = aqs_testkit::clickhouse().expect("shared ClickHouse");
    let private = services.clickhouse_env();
    assert!(
        ping(services.clickhouse_url()),
        "the private ClickHouse answers"
    );

    let (database, client) = private.fresh_database().await;
    client
        .query("CREATE TABLE kept (a UInt8) ENGINE = MergeTree ORDER BY a")
        .execute()
        .await
        .expect("create");
    client
        .query("INSERT INTO kept VALUES (7)")
        .execute()
        .await
        .expect("insert");

    services.pause(Service::ClickHouse);
    assert!(
        !ping(services.clickhouse_url()),
        "a hung ClickHouse answers nothing"
    );
    let (_, shared_client) = shared.fresh_database().await;
    shared_client
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
        .expect("the shared ClickHouse still answers");
    services.resume(Service::ClickHouse);
    assert!(
        ping(services.clickhouse_url()),
        "answers again once resumed"
    );

    services.stop(Service::ClickHouse);
    assert!(
        !ping(services.clickhouse_url()),
        "a stopped ClickHouse answers nothing"
    );
    services.relaunch(Service::ClickHouse);
    let kept: u8 = client
        .query("SELECT a FROM kept")
        .fetch_one()
        .await
        .unwrap_or_else(|error| panic!("reading {database}.kept after the relaunch: {error}"));
    assert_eq!(kept, 7, "the data survived the relaunch");

    services.stop(Service::Kafka);
    services.relaunch(Service::Kafka);
    let topic = services.kafka_env().fresh_topic(1);
    assert!(!topic.is_empty());
}
