// A minimal Neo4j Community server: the embedded DBMS with its Bolt connector, configured
// from a neo4j.conf file that knobs writes. Usage:
//   java -cp 'lib/*:classes' KnobsNeo4j HOME_DIR CONF_FILE PASSWORD_FILE
// On first start it sets the password of user `neo4j` from PASSWORD_FILE (no change
// required), then serves until SIGTERM, when it shuts the DBMS down cleanly.
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

public final class KnobsNeo4j {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: KnobsNeo4j HOME_DIR CONF_FILE PASSWORD_FILE");
            System.exit(2);
        }
        Path home = Path.of(args[0]);
        Path conf = Path.of(args[1]);
        String password = Files.readString(Path.of(args[2]), StandardCharsets.UTF_8).strip();
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .loadPropertiesFromFile(conf)
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            dbms.shutdown();
            stopped.countDown();
        }));
        Path marker = home.resolve("password-set");
        if (!Files.exists(marker)) {
            dbms.database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
            Files.writeString(marker, "1");
        }
        System.out.println("knobs-neo4j: ready");
        System.out.flush();
        stopped.await();
    }
}
