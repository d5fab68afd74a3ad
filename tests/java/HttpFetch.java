import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Test helper of apim-pki: a client of load balancers.
 *
 * <pre>
 * java -Djdk.net.hosts.file=HOSTS -cp DIR HttpFetch TRUSTSTORE TYPE PASSWORD_ENV
 * </pre>
 *
 * <p>Trusts only TRUSTSTORE (password from the environment variable PASSWORD_ENV) and keeps
 * HttpsURLConnection's HTTPS host-name check. Reads lines "URL [COOKIE]" from standard input
 * and prints one line per request: "STATUS BODY SETCOOKIE" ("-" for an empty field), or
 * "ERROR Class: message". Timeouts: 10 s to connect and to read.
 */
public final class HttpFetch {
    private HttpFetch() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("HttpFetch: usage: HttpFetch TRUSTSTORE TYPE PASSWORD_ENV");
            System.exit(3);
        }
        char[] pass = System.getenv(args[2]).toCharArray();
        KeyStore trust = KeyStore.getInstance(args[1]);
        try (InputStream in = new FileInputStream(args[0])) {
            trust.load(in, pass);
        }
        TrustManagerFactory tmf =
            TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);
        HttpsURLConnection.setDefaultSSLSocketFactory(context.getSocketFactory());
        BufferedReader lines =
            new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = lines.readLine()) != null) {
            String[] parts = line.trim().split(" ", 2);
            System.out.println(fetch(parts[0], parts.length > 1 ? parts[1] : null));
            System.out.flush();
        }
    }

    private static String fetch(String url, String cookie) {
        try {
            HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
            c.setConnectTimeout(10_000);
            c.setReadTimeout(10_000);
            c.setInstanceFollowRedirects(false);
            if (cookie != null) {
                c.setRequestProperty("Cookie", cookie);
            }
            int status = c.getResponseCode();
            InputStream in = status < 400 ? c.getInputStream() : c.getErrorStream();
            String body = "";
            if (in != null) {
                try (InputStream s = in) {
                    body = new String(s.readAllBytes(), StandardCharsets.UTF_8).trim();
                }
            }
            if (status >= 400 || body.isEmpty() || body.contains(" ") || body.contains("\n")) {
                body = "-";
            }
            String set = c.getHeaderField("Set-Cookie");
            String first = set == null ? "-" : set.split(";", 2)[0];
            return status + " " + body + " " + first;
        } catch (IOException e) {
            return "ERROR " + e.getClass().getName() + ": " + e.getMessage();
        }
    }
}
