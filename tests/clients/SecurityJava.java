// The Apache Kafka Java client (kafka-clients 3.9.1) on a Strom SASL_SSL listener with
// SCRAM-SHA-512.
//
// Run as a single-file program:
//   java -cp KAFKA_JARS SecurityJava.java BOOTSTRAP CA_PEM USER PASSWORD TOPIC
//
// TLS verifies the broker against CA_PEM (ssl.truststore.type=PEM; hostname verification at
// its default, https). A producer at its defaults (idempotent, acks=all) sends 20 records to
// partition 0, a consumer without group.id reads them back from the first offset; then a
// producer with a wrong password must fail with SaslAuthenticationException, promptly.
// Prints one JSON object on stdout; exits 1 with a message on stderr on failure.

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class SecurityJava {
    static void fail(String msg) {
        System.err.println("FAIL: " + msg);
        System.exit(1);
    }

    static String q(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ") + "\"";
    }

    static Properties props(String bootstrap, String ca, String user, String password) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("security.protocol", "SASL_SSL");
        p.put("sasl.mechanism", "SCRAM-SHA-512");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                + user + "\" password=\"" + password + "\";");
        p.put("ssl.truststore.type", "PEM");
        p.put("ssl.truststore.location", ca);
        p.put("request.timeout.ms", "15000");
        p.put("reconnect.backoff.max.ms", "1000");
        return p;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 5) fail("usage: SecurityJava BOOTSTRAP CA_PEM USER PASSWORD TOPIC");
        String bootstrap = args[0], ca = args[1], user = args[2], password = args[3], topic = args[4];
        int n = 20;

        Properties pp = props(bootstrap, ca, user, password);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        pp.put("max.block.ms", "30000");
        pp.put("delivery.timeout.ms", "30000");
        List<Long> offsets = new ArrayList<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<java.util.concurrent.Future<RecordMetadata>> futures = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                futures.add(producer.send(new ProducerRecord<>(topic, 0, "java-" + i, "java-value-" + i)));
            }
            producer.flush();
            for (java.util.concurrent.Future<RecordMetadata> f : futures) {
                offsets.add(f.get(30, TimeUnit.SECONDS).offset());
            }
        }

        Properties cp = props(bootstrap, ca, user, password);
        cp.put("key.deserializer", StringDeserializer.class.getName());
        cp.put("value.deserializer", StringDeserializer.class.getName());
        cp.put("enable.auto.commit", "false");
        cp.put("auto.offset.reset", "none");
        List<String> consumed = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seek(tp, Collections.min(offsets));
            long deadline = System.currentTimeMillis() + 30_000;
            while (consumed.size() < n && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    consumed.add(r.value());
                }
            }
        }

        Properties bad = props(bootstrap, ca, user, password + "-wrong");
        bad.put("key.serializer", StringSerializer.class.getName());
        bad.put("value.serializer", StringSerializer.class.getName());
        bad.put("max.block.ms", "15000");
        bad.put("delivery.timeout.ms", "15000");
        bad.put("request.timeout.ms", "10000");
        bad.put("linger.ms", "0");
        String wrongError = "none";
        String wrongMessage = "";
        boolean wrongDelivered = false;
        long started = System.nanoTime();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(bad)) {
            producer.send(new ProducerRecord<>(topic, 0, "bad", "bad")).get(20, TimeUnit.SECONDS);
            wrongDelivered = true;
        } catch (ExecutionException e) {
            wrongError = e.getCause().getClass().getSimpleName();
            wrongMessage = String.valueOf(e.getCause().getMessage());
        } catch (Exception e) {
            wrongError = e.getClass().getSimpleName();
            wrongMessage = String.valueOf(e.getMessage());
        }
        double wrongSeconds = (System.nanoTime() - started) / 1e9;

        StringBuilder out = new StringBuilder("{");
        out.append("\"produced\":").append(offsets.size());
        out.append(",\"consumed\":[");
        for (int i = 0; i < consumed.size(); i++) {
            if (i > 0) out.append(',');
            out.append(q(consumed.get(i)));
        }
        out.append("],\"wrong_password_error\":").append(q(wrongError));
        out.append(",\"wrong_password_message\":").append(q(wrongMessage));
        out.append(",\"wrong_password_delivered\":").append(wrongDelivered);
        out.append(",\"wrong_password_s\":").append(String.format(Locale.ROOT, "%.3f", wrongSeconds));
        out.append("}");
        System.out.println(out);
    }
}
