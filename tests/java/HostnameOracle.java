import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SNIServerName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * JSSE oracle for tests/it/hostname_jsse.rs: for every manifest line
 * "id TAB host TAB cert.pem TAB key.pem (PKCS#8)" it serves the key on a loopback
 * SSLServerSocket and connects a client that trusts exactly that certificate, with
 * endpoint identification "HTTPS" and SNI = host for DNS hosts. Prints
 * "id TAB ACCEPT" or "id TAB REJECT TAB reason" per line. One JVM for all cases.
 */
public final class HostnameOracle {
    private static final char[] PW = "changeit".toCharArray();

    public static void main(String[] args) throws Exception {
        System.out.println("#\t" + System.getProperty("java.vm.name") + " " + System.getProperty("java.version"));
        try (BufferedReader in = Files.newBufferedReader(Paths.get(args[0]), StandardCharsets.UTF_8)) {
            for (String line; (line = in.readLine()) != null; ) {
                if (line.isEmpty()) continue;
                String[] f = line.split("\t");
                String verdict;
                try {
                    verdict = run(f[1], f[2], f[3]);
                } catch (Exception e) {
                    verdict = "ERROR\t" + oneLine(e);
                }
                System.out.println(f[0] + "\t" + verdict);
                System.out.flush();
            }
        }
    }

    private static String run(String host, String certPath, String keyPath) throws Exception {
        Certificate cert;
        try (InputStream is = new FileInputStream(certPath)) {
            cert = CertificateFactory.getInstance("X.509").generateCertificate(is);
        }
        String pem = new String(Files.readAllBytes(Paths.get(keyPath)), StandardCharsets.US_ASCII);
        byte[] der = Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
        PrivateKey key = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(der));

        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setKeyEntry("server", key, PW, new Certificate[] {cert});
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509"); // ignores SNI
        kmf.init(ks, PW);
        SSLContext serverCtx = SSLContext.getInstance("TLS");
        serverCtx.init(kmf.getKeyManagers(), null, null);

        KeyStore ts = KeyStore.getInstance("PKCS12");
        ts.load(null, null);
        ts.setCertificateEntry("trusted", cert);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(ts);
        SSLContext clientCtx = SSLContext.getInstance("TLS");
        clientCtx.init(null, tmf.getTrustManagers(), null);

        InetAddress loopback = InetAddress.getByName("127.0.0.1");
        try (SSLServerSocket server = (SSLServerSocket) serverCtx.getServerSocketFactory()
                .createServerSocket(0, 1, loopback)) {
            server.setSoTimeout(20000);
            Thread t = new Thread(() -> serveOnce(server));
            t.setDaemon(true);
            t.start();
            try (Socket plain = new Socket(loopback, server.getLocalPort());
                 SSLSocket s = (SSLSocket) clientCtx.getSocketFactory()
                         .createSocket(plain, host, server.getLocalPort(), true)) {
                s.setSoTimeout(20000);
                SSLParameters p = s.getSSLParameters();
                p.setEndpointIdentificationAlgorithm("HTTPS");
                boolean ip = host.indexOf(':') >= 0 || host.matches("[0-9.]+");
                List<SNIServerName> sni =
                        ip ? Collections.emptyList() : List.of(new SNIHostName(host));
                p.setServerNames(sni);
                s.setSSLParameters(p);
                s.startHandshake();
                return "ACCEPT";
            } catch (javax.net.ssl.SSLException e) {
                return "REJECT\t" + oneLine(e);
            } finally {
                t.join(20000);
            }
        }
    }

    private static void serveOnce(ServerSocket server) {
        try (SSLSocket s = (SSLSocket) server.accept()) {
            s.setSoTimeout(20000);
            s.startHandshake();
            s.getInputStream().read(); // wait for the client to close
        } catch (Exception ignored) {
            // the client reports the verdict
        }
    }

    private static String oneLine(Throwable e) {
        Throwable root = e;
        while (root.getCause() != null) root = root.getCause();
        return (e + (root != e ? " <- " + root : "")).replace('\t', ' ').replace('\n', ' ');
    }
}
