import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.util.concurrent.Executors;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/**
 * Test helper of apim-pki: stand-in WSO2 nodes behind a load balancer, in one JVM.
 *
 * <pre>
 * java -cp DIR HttpServe TYPE PASSWORD_ENV (KEYSTORE NAME HTTPS_COUNT HTTP_COUNT)...
 * </pre>
 *
 * <p>Per group: serves HTTPS with KEYSTORE (JKS or PKCS12; key password = store password, from
 * the environment variable PASSWORD_ENV) on HTTPS_COUNT ephemeral loopback ports and plain HTTP
 * on HTTP_COUNT more, answering every request 200 with the body NAME, and prints
 * "PORTS p1 p2 ..." (HTTPS first), one line per group in order. Exits when standard input
 * closes; 3 on a usage or keystore error.
 */
public final class HttpServe {
    private HttpServe() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 6 || (args.length - 2) % 4 != 0) {
            System.err.println("HttpServe: usage: HttpServe TYPE PASSWORD_ENV (KEYSTORE NAME HTTPS_COUNT HTTP_COUNT)...");
            System.exit(3);
        }
        String password = System.getenv(args[1]);
        if (password == null) {
            System.err.println("HttpServe: environment variable " + args[1] + " is not set");
            System.exit(3);
        }
        for (int g = 2; g < args.length; g += 4) {
            SSLContext context = context(args[g], args[0], password.toCharArray());
            byte[] body = args[g + 1].getBytes(StandardCharsets.UTF_8);
            serve(context, body, Integer.parseInt(args[g + 2]), Integer.parseInt(args[g + 3]));
        }
        System.out.flush();
        byte[] buf = new byte[256];
        try {
            while (System.in.read(buf) >= 0) {
                // Discard.
            }
        } catch (IOException e) {
            // Treat like end of input.
        }
        System.exit(0);
    }

    private static SSLContext context(String file, String type, char[] pass) {
        try {
            KeyStore keyStore = KeyStore.getInstance(type);
            try (InputStream in = new FileInputStream(file)) {
                keyStore.load(in, pass);
            }
            KeyManagerFactory kmf =
                KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keyStore, pass);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf.getKeyManagers(), null, null);
            return context;
        } catch (Exception e) {
            System.err.println("HttpServe: " + file + ": " + e);
            System.exit(3);
            return null;
        }
    }

    private static void serve(SSLContext context, byte[] body, int https, int http)
            throws IOException {
        StringBuilder ports = new StringBuilder("PORTS");
        InetSocketAddress any = new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0);
        for (int i = 0; i < https + http; i++) {
            HttpServer server;
            if (i < https) {
                HttpsServer s = HttpsServer.create(any, 64);
                s.setHttpsConfigurator(new HttpsConfigurator(context));
                server = s;
            } else {
                server = HttpServer.create(any, 64);
            }
            server.createContext("/", exchange -> answer(exchange, body));
            server.setExecutor(Executors.newFixedThreadPool(2));
            server.start();
            ports.append(' ').append(server.getAddress().getPort());
        }
        System.out.println(ports);
    }

    private static void answer(HttpExchange exchange, byte[] body) throws IOException {
        try (InputStream in = exchange.getRequestBody()) {
            in.readAllBytes();
        }
        exchange.getResponseHeaders().add("Content-Type", "text/plain");
        exchange.sendResponseHeaders(200, body.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(body);
        }
    }
}
