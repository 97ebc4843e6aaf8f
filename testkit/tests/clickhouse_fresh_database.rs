//! Fresh databases on the real ClickHouse are separate.

#[tokio::test]
async fn fresh_databases_are_separate() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let (first, first_client) = clickhouse.fresh_database().await;
    let (second, second_client) = clickhouse.fresh_database().await;
    assert_ne!(first, second);
    for client in [&first_client, &second_client] {
        client
            .query("CREATE TABLE t (x UInt32) ENGINE = MergeTree() ORDER BY x")
            .execute()
            .await
            .expect("create table");
    }
    first_client
        .query("INSERT INTO t VALUES (1), (2)")
        .execute()
        .await
        .expect("insert");
    let count = |client: clickhouse::Client| async move {
        client
            .query("SELECT count() FROM t")
            .fetch_one::<u64>()
            .await
            .expect("count")
    };
    assert_eq!(count(first_client).await, 2);
    assert_eq!(count(second_client).await, 0);
    clickhouse.drop_database(&second).await;
    let left: u64 = clickhouse
        .client()
        .query("SELECT count() FROM system.databases WHERE name IN (?, ?)")
        .bind(&first)
        .bind(&second)
        .fetch_one()
        .await
        .expect("count databases");
    assert_eq!(left, 1, "{second} dropped, {first} kept");
}
