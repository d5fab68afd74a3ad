import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * Test helper of apim-pki: one real TLS handshake per --host on loopback, in one JVM.
 *
 * <pre>
 * java -cp DIR TlsProbe --keystore K --keystore-type JKS|PKCS12 --keystore-password-env VAR
 *     --truststore T --truststore-type JKS|PKCS12 --truststore-password-env VAR2
 *     --host NAME [--host NAME2 ...] [--next --keystore ... (another probe) ...]
 * </pre>
 *
 * <p>Several probes may run in one JVM, separated by {@code --next}: each prints "JOB n" first.
 *
 * <p>The server (127.0.0.1, ephemeral port) uses the keystore (key password = store password).
 * Each client trusts the truststore, verifies the endpoint with the "HTTPS" algorithm against the
 * host name, sends SNI (except for IP literals), completes the handshake and echoes one byte.
 * Prints "OK host" or "FAIL host Class: message" per host. Exit 0 when every host ran, 3 on a
 * usage or keystore load error. Passwords come only from environment variables.
 */
public final class TlsProbe {
    private static final int TIMEOUT_MS = 10_000;

    private TlsProbe() {}

    /** A usage or setup error: reported on stderr with exit code 3. */
    private static final class SetupException extends Exception {
        private static final long serialVersionUID = 1L;

        SetupException(String message) {
            super(message);
        }
    }

    public static void main(String[] args) {
        try {
            List<String> all = java.util.Arrays.asList(args);
            if (!all.contains("--next")) {
                run(args);
            } else {
                int job = 0;
                int from = 0;
                for (int i = 0; i <= all.size(); i++) {
                    if (i == all.size() || all.get(i).equals("--next")) {
                        System.out.println("JOB " + job++);
                        run(all.subList(from, i).toArray(new String[0]));
                        from = i + 1;
                    }
                }
            }
        } catch (SetupException e) {
            System.err.println("TlsProbe: " + e.getMessage());
            System.exit(3);
        }
        System.exit(0);
    }

    private static void run(String[] args) throws SetupException {
        String keystore = null;
        String keystoreType = null;
        String keystorePassEnv = null;
        String truststore = null;
        String truststoreType = null;
        String truststorePassEnv = null;
        List<String> hosts = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String opt = args[i];
            if (i + 1 >= args.length) {
                throw new SetupException("missing value for " + opt);
            }
            String value = args[++i];
            switch (opt) {
                case "--keystore": keystore = value; break;
                case "--keystore-type": keystoreType = value; break;
                case "--keystore-password-env": keystorePassEnv = value; break;
                case "--truststore": truststore = value; break;
                case "--truststore-type": truststoreType = value; break;
                case "--truststore-password-env": truststorePassEnv = value; break;
                case "--host": hosts.add(value); break;
                default: throw new SetupException("unknown option " + opt);
            }
        }
        if (keystore == null || keystoreType == null || keystorePassEnv == null
                || truststore == null || truststoreType == null || truststorePassEnv == null
                || hosts.isEmpty()) {
            throw new SetupException("usage: TlsProbe --keystore K --keystore-type T"
                    + " --keystore-password-env VAR --truststore T --truststore-type T"
                    + " --truststore-password-env VAR --host NAME [--host NAME ...]");
        }
        char[] ksPass = password(keystorePassEnv);
        char[] tsPass = password(truststorePassEnv);
        KeyStore ks = load("keystore", keystore, keystoreType, ksPass);
        KeyStore ts = load("truststore", truststore, truststoreType, tsPass);

        SSLContext serverContext;
        TrustManagerFactory tmf;
        try {
            KeyManagerFactory kmf =
                    KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, ksPass);
            serverContext = SSLContext.getInstance("TLS");
            serverContext.init(kmf.getKeyManagers(), null, null);
            tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ts);
        } catch (Exception e) {
            throw new SetupException("cannot initialise key/trust managers: " + Describe.describe(e));
        }

        InetAddress loopback;
        SSLServerSocket server;
        try {
            loopback = InetAddress.getByName("127.0.0.1");
            server = (SSLServerSocket) serverContext.getServerSocketFactory()
                    .createServerSocket(0, 50, loopback);
            server.setSoTimeout(TIMEOUT_MS);
        } catch (IOException e) {
            throw new SetupException("cannot start the TLS server: " + Describe.describe(e));
        }
        Thread acceptor = new Thread(() -> serve(server), "tls-probe-server");
        acceptor.setDaemon(true);
        acceptor.start();

        for (String host : hosts) {
            String result;
            try {
                probe(tmf, loopback, server.getLocalPort(), host);
                result = "OK " + host;
            } catch (Exception e) {
                result = "FAIL " + host + " " + Describe.describe(e);
            }
            System.out.println(result);
            System.out.flush();
        }
        try {
            server.close();
        } catch (IOException e) {
            // Ignored: the process exits anyway.
        }
    }

    private static char[] password(String env) throws SetupException {
        String value = System.getenv(env);
        if (value == null) {
            throw new SetupException("environment variable " + env + " is not set");
        }
        return value.toCharArray();
    }

    private static KeyStore load(String what, String file, String type, char[] pass)
            throws SetupException {
        try (InputStream in = new FileInputStream(file)) {
            KeyStore ks = KeyStore.getInstance(type);
            ks.load(in, pass);
            return ks;
        } catch (Exception e) {
            throw new SetupException(
                    "cannot load " + what + " " + file + " (" + type + "): " + Describe.describe(e));
        }
    }

    /** Accepts connections until the server socket is closed or idles for TIMEOUT_MS. */
    private static void serve(SSLServerSocket server) {
        while (!server.isClosed()) {
            Socket socket;
            try {
                socket = server.accept();
            } catch (SocketTimeoutException e) {
                continue;
            } catch (IOException e) {
                return;
            }
            Thread worker = new Thread(() -> echoOnce(socket), "tls-probe-conn");
            worker.setDaemon(true);
            worker.start();
        }
    }

    private static void echoOnce(Socket socket) {
        try (Socket s = socket) {
            s.setSoTimeout(TIMEOUT_MS);
            ((SSLSocket) s).startHandshake();
            int b = s.getInputStream().read();
            if (b >= 0) {
                OutputStream out = s.getOutputStream();
                out.write(b);
                out.flush();
            }
        } catch (IOException e) {
            // The client reports the failure; the server side only needs to survive it.
        }
    }

    private static void probe(TrustManagerFactory tmf, InetAddress loopback, int port, String host)
            throws Exception {
        // A fresh context per host: no session resumption between probes.
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);
        Socket plain = new Socket();
        try {
            plain.connect(new InetSocketAddress(loopback, port), TIMEOUT_MS);
            plain.setSoTimeout(TIMEOUT_MS);
        } catch (IOException e) {
            plain.close();
            throw e;
        }
        // Layering over a connected socket makes `host` the peer host used for endpoint checks.
        try (SSLSocket socket =
                (SSLSocket) context.getSocketFactory().createSocket(plain, host, port, true)) {
            SSLParameters params = socket.getSSLParameters();
            params.setEndpointIdentificationAlgorithm("HTTPS");
            if (isIpLiteral(host)) {
                params.setServerNames(Collections.emptyList());
            } else {
                params.setServerNames(Collections.singletonList(new SNIHostName(host)));
            }
            socket.setSSLParameters(params);
            socket.startHandshake();
            OutputStream out = socket.getOutputStream();
            out.write(0x2A);
            out.flush();
            int echoed = socket.getInputStream().read();
            if (echoed != 0x2A) {
                throw new IOException("server did not echo the probe byte (got " + echoed + ")");
            }
        }
    }

    private static boolean isIpLiteral(String host) {
        if (host.indexOf(':') >= 0) {
            return true;
        }
        return host.matches("[0-9]{1,3}(\\.[0-9]{1,3}){3}");
    }

    /** "Class: message", followed by "; caused by Class: message" for each distinct cause. */
}
