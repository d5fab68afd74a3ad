import java.io.FileInputStream;
import java.io.InputStream;
import java.security.Key;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import javax.security.auth.x500.X500Principal;

/**
 * Test helper of apim-pki: proves that a JVM (possibly an old one) can open a keystore.
 *
 * <pre>java -cp DIR KeystoreDump FILE TYPE PASSWORD_ENV</pre>
 *
 * <p>Prints one line per alias, sorted:
 * {@code <alias> <PrivateKeyEntry|trustedCertEntry|SecretKeyEntry> chain=<n> subject=<RFC2253>}
 * and, for private keys, {@code key=<algorithm>} (recovered with the store password).
 * Exit 3 with the exception message on any failure.
 */
public final class KeystoreDump {
    private KeystoreDump() {}

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: KeystoreDump FILE TYPE PASSWORD_ENV");
            System.exit(3);
        }
        String pass = System.getenv(args[2]);
        if (pass == null) {
            System.err.println("KeystoreDump: environment variable " + args[2] + " is not set");
            System.exit(3);
        }
        try {
            System.out.print(dump(args[0], args[1], pass.toCharArray()));
            System.out.flush();
        } catch (Exception e) {
            System.err.println("KeystoreDump: " + Describe.describe(e));
            System.exit(3);
        }
        System.exit(0);
    }

    private static String dump(String file, String type, char[] pass) throws Exception {
        KeyStore ks = KeyStore.getInstance(type);
        try (InputStream in = new FileInputStream(file)) {
            ks.load(in, pass);
        }
        List<String> aliases = new ArrayList<>(Collections.list(ks.aliases()));
        Collections.sort(aliases);
        StringBuilder out = new StringBuilder();
        for (String alias : aliases) {
            out.append(alias).append(' ');
            if (ks.entryInstanceOf(alias, KeyStore.PrivateKeyEntry.class)) {
                Certificate[] chain = ks.getCertificateChain(alias);
                int n = chain == null ? 0 : chain.length;
                out.append("PrivateKeyEntry chain=").append(n)
                        .append(" subject=").append(n == 0 ? "-" : subject(chain[0]));
                Key key = ks.getKey(alias, pass);
                out.append(" key=").append(key == null ? "null" : key.getAlgorithm());
            } else if (ks.entryInstanceOf(alias, KeyStore.TrustedCertificateEntry.class)) {
                out.append("trustedCertEntry chain=1 subject=")
                        .append(subject(ks.getCertificate(alias)));
            } else if (ks.entryInstanceOf(alias, KeyStore.SecretKeyEntry.class)) {
                out.append("SecretKeyEntry chain=0 subject=-");
            } else {
                out.append("unknownEntry chain=0 subject=-");
            }
            out.append('\n');
        }
        return out.toString();
    }

    private static String subject(Certificate cert) {
        if (cert instanceof X509Certificate) {
            return ((X509Certificate) cert).getSubjectX500Principal()
                    .getName(X500Principal.RFC2253);
        }
        return "-";
    }

    /** "Class: message", followed by "; caused by Class: message" for each distinct cause. */
}
