import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * What a JDK's HTTPS clients say about host names, for tests/it/jsse_host_texts.rs. Serves the single
 * key entry of a JKS keystore (args[0], password "changeit") on loopback and, for each further
 * argument HOST, connects twice, trusting exactly that certificate: an SSLSocket with endpoint
 * identification "HTTPS" and JSSE's default SNI, and an HttpsURLConnection to
 * https://HOST:port/ (run with -Djdk.net.hosts.file so HOST resolves to 127.0.0.1). Prints
 * "HOST TAB client TAB ACCEPT" or "HOST TAB client TAB REJECT TAB message" per connection.
 */
public final class HostCheckProbe {
    private static final char[] PW = "changeit".toCharArray();

    public static void main(String[] args) throws Exception {
        System.out.println("#\t" + System.getProperty("java.version"));
        KeyStore ks = KeyStore.getInstance("JKS");
        try (InputStream in = new FileInputStream(args[0])) {
            ks.load(in, PW);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
        kmf.init(ks, PW);
        SSLContext serverCtx = SSLContext.getInstance("TLS");
        serverCtx.init(kmf.getKeyManagers(), null, null);
        KeyStore ts = KeyStore.getInstance("JKS");
        ts.load(null, null);
        ts.setCertificateEntry("trusted", ks.getCertificate(ks.aliases().nextElement()));
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(ts);
        SSLContext clientCtx = SSLContext.getInstance("TLS");
        clientCtx.init(null, tmf.getTrustManagers(), null);

        InetAddress loopback = InetAddress.getByName("127.0.0.1");
        SSLServerSocket server = (SSLServerSocket) serverCtx.getServerSocketFactory()
                .createServerSocket(0, 50, loopback);
        Thread acceptor = new Thread(() -> serve(server));
        acceptor.setDaemon(true);
        acceptor.start();
        int port = server.getLocalPort();
        for (int i = 1; i < args.length; i++) {
            String host = args[i];
            System.out.println(host + "\tSSLSocket\t" + viaSocket(clientCtx, loopback, host, port));
            System.out.println(host + "\tHttpsURLConnection\t" + viaUrl(clientCtx, host, port));
        }
        server.close();
    }

    private static String viaSocket(SSLContext ctx, InetAddress at, String host, int port) {
        try (Socket plain = new Socket(at, port);
             SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(plain, host, port, true)) {
            s.setSoTimeout(20000);
            SSLParameters p = s.getSSLParameters();
            p.setEndpointIdentificationAlgorithm("HTTPS");
            s.setSSLParameters(p);
            s.startHandshake();
            return "ACCEPT";
        } catch (Exception e) {
            return "REJECT\t" + oneLine(e);
        }
    }

    private static String viaUrl(SSLContext ctx, String host, int port) {
        try {
            HttpsURLConnection c =
                    (HttpsURLConnection) new URL("https://" + host + ":" + port + "/").openConnection();
            c.setSSLSocketFactory(ctx.getSocketFactory());
            c.setConnectTimeout(20000);
            c.setReadTimeout(20000);
            int code = c.getResponseCode();
            c.disconnect();
            return code == 200 ? "ACCEPT" : "REJECT\tHTTP " + code;
        } catch (Exception e) {
            return "REJECT\t" + oneLine(e);
        }
    }

    private static void serve(SSLServerSocket server) {
        while (!server.isClosed()) {
            try {
                SSLSocket s = (SSLSocket) server.accept();
                Thread t = new Thread(() -> answer(s));
                t.setDaemon(true);
                t.start();
            } catch (Exception e) {
                return;
            }
        }
    }

    private static void answer(SSLSocket s) {
        try (SSLSocket socket = s) {
            socket.setSoTimeout(20000);
            socket.startHandshake();
            OutputStream out = socket.getOutputStream();
            out.write("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".getBytes(StandardCharsets.US_ASCII));
            out.flush();
        } catch (Exception ignored) {
            // the client reports the verdict
        }
    }

    private static String oneLine(Throwable e) {
        return e.toString().replace('\t', ' ').replace('\n', ' ');
    }
}
