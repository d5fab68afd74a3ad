import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.security.KeyStore;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;

/**
 * Test helper of apim-pki: a JSSE TLS server on loopback that serves a keystore.
 *
 * <pre>
 * java -cp DIR TlsServe KEYSTORE TYPE PASSWORD_ENV [PROTOCOLS]
 * </pre>
 *
 * <p>Loads KEYSTORE (JKS or PKCS12; key password = store password, read from the environment
 * variable PASSWORD_ENV), listens on 127.0.0.1 with an ephemeral port and prints "PORT n". It
 * then accepts connections until standard input closes. PROTOCOLS, if given, is a comma list of
 * enabled protocols such as "TLSv1.2". Per connection it prints "HANDSHAKE protocol cipher-suite"
 * after a completed handshake, or "FAIL Class: message", and "DATA n" if the client sent
 * application data. Exit 0 when standard input closes, 3 on a usage or keystore error.
 */
public final class TlsServe {
    private static final int TIMEOUT_MS = 30_000;

    private TlsServe() {}

    public static void main(String[] args) {
        if (args.length < 3 || args.length > 4) {
            System.err.println("TlsServe: usage: TlsServe KEYSTORE TYPE PASSWORD_ENV [PROTOCOLS]");
            System.exit(3);
        }
        String password = System.getenv(args[2]);
        if (password == null) {
            System.err.println("TlsServe: environment variable " + args[2] + " is not set");
            System.exit(3);
        }
        char[] pass = password.toCharArray();
        SSLServerSocket server;
        try {
            KeyStore keyStore = KeyStore.getInstance(args[1]);
            try (InputStream in = new FileInputStream(args[0])) {
                keyStore.load(in, pass);
            }
            KeyManagerFactory kmf =
                KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(keyStore, pass);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf.getKeyManagers(), null, null);
            server = (SSLServerSocket) context.getServerSocketFactory()
                .createServerSocket(0, 128, InetAddress.getByName("127.0.0.1"));
            if (args.length == 4) {
                server.setEnabledProtocols(args[3].split(","));
            }
        } catch (Exception e) {
            System.err.println("TlsServe: " + e);
            System.exit(3);
            return;
        }

        Thread watcher = new Thread(TlsServe::exitWhenStdinCloses, "stdin-watcher");
        watcher.setDaemon(true);
        watcher.start();

        say("PORT " + server.getLocalPort());
        while (true) {
            Socket socket;
            try {
                socket = server.accept();
            } catch (IOException e) {
                say("FAIL accept " + e);
                continue;
            }
            Thread worker = new Thread(() -> handle(socket), "connection");
            worker.setDaemon(true);
            worker.start();
        }
    }

    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    private static void exitWhenStdinCloses() {
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

    private static void handle(Socket socket) {
        try (SSLSocket ssl = (SSLSocket) socket) {
            ssl.setSoTimeout(TIMEOUT_MS);
            ssl.startHandshake();
            SSLSession session = ssl.getSession();
            say("HANDSHAKE " + session.getProtocol() + " " + session.getCipherSuite());
            InputStream in = ssl.getInputStream();
            byte[] buf = new byte[4096];
            int total = 0;
            int n;
            while ((n = in.read(buf)) >= 0) {
                total += n;
            }
            if (total > 0) {
                say("DATA " + total);
            }
        } catch (IOException e) {
            // After a completed handshake a reset or an abrupt close is fine: the probe may
            // hang up without waiting for the server.
            say("FAIL " + e.getClass().getName() + ": " + e.getMessage());
        }
    }
}
