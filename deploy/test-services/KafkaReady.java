// Readiness probe for the test Kafka broker, used by services.sh.
//
// An open TCP port is not enough: the broker binds its listener early but only
// serves requests once it has caught up with the metadata log and been unfenced.
// So this asks for real metadata with the Admin client from the broker's own
// kafka-clients jar: DescribeCluster must list a node and ListTopics (a Metadata
// request) must answer. It retries until the deadline, then exits 1.
//
// Usage: java -cp 'CLASSES:LIBS/*' KafkaReady HOST:PORT TIMEOUT_SECONDS

import java.util.Collection;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.common.Node;

public final class KafkaReady {
    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: KafkaReady HOST:PORT TIMEOUT_SECONDS");
            System.exit(2);
        }
        String bootstrap = args[0];
        long deadline = System.nanoTime() + Long.parseLong(args[1]) * 1_000_000_000L;

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "aqs-services-ready-check");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MS_CONFIG, "100");
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "500");
        props.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "100");

        String last = "no attempt made";
        try (Admin admin = Admin.create(props)) {
            while (System.nanoTime() < deadline) {
                try {
                    DescribeClusterResult cluster =
                        admin.describeCluster(new DescribeClusterOptions().timeoutMs(3000));
                    Collection<Node> nodes = cluster.nodes().get();
                    String clusterId = cluster.clusterId().get();
                    int topics = admin.listTopics(new ListTopicsOptions().timeoutMs(3000))
                        .names().get().size();
                    if (!nodes.isEmpty()) {
                        System.out.println("cluster " + clusterId + ", nodes " + nodes
                            + ", " + topics + " topic(s)");
                        return;
                    }
                    last = "metadata answered with no broker nodes";
                } catch (Exception e) {
                    Throwable cause = e.getCause() != null ? e.getCause() : e;
                    last = cause.toString();
                }
                Thread.sleep(200);
            }
        }
        System.err.println("kafka at " + bootstrap + " not ready: " + last);
        System.exit(1);
    }
}
