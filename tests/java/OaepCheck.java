import java.io.FileInputStream;
import java.io.InputStream;
import java.security.Key;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Arrays;
import javax.crypto.Cipher;

/**
 * Test helper of apim-pki: proves that data encrypted under one primary certificate can still be
 * decrypted with another keystore's private key, the way WSO2 encrypts secrets with the primary
 * key (RSA/ECB/OAEPwithSHA1andMGF1Padding).
 *
 * <pre>
 * java -cp DIR OaepCheck OLD_KEYSTORE OLD_TYPE NEW_KEYSTORE NEW_TYPE PASSWORD_ENV [ALIAS]
 * </pre>
 *
 * <p>Both keystores open with the password in the environment variable PASSWORD_ENV (store and
 * key password alike, as WSO2 requires). ALIAS defaults to {@code wso2carbon}. A random 32-byte
 * secret is encrypted with the public key of OLD_KEYSTORE's certificate under ALIAS and decrypted
 * with NEW_KEYSTORE's private key under ALIAS. OLD_TYPE {@code PEM} takes OLD_KEYSTORE as a PEM
 * (or DER) certificate file instead, for a negative control. Prints
 *
 * <pre>
 * OK                                       (or: FAIL Class: message)
 * old serial=&lt;hex&gt; not_before=&lt;epoch seconds&gt;
 * new serial=&lt;hex&gt; not_before=&lt;epoch seconds&gt;
 * </pre>
 *
 * <p>Exit 0 when the secret came back intact, 1 when it did not (decryption failed or gave other
 * bytes), 3 on a usage or keystore error.
 */
public final class OaepCheck {
    private static final String TRANSFORMATION = "RSA/ECB/OAEPwithSHA1andMGF1Padding";

    private OaepCheck() {}

    public static void main(String[] args) {
        if (args.length < 5 || args.length > 6) {
            System.err.println("OaepCheck: usage: OaepCheck OLD_KEYSTORE OLD_TYPE NEW_KEYSTORE"
                    + " NEW_TYPE PASSWORD_ENV [ALIAS]");
            System.exit(3);
        }
        String password = System.getenv(args[4]);
        if (password == null) {
            System.err.println("OaepCheck: environment variable " + args[4] + " is not set");
            System.exit(3);
        }
        char[] pass = password.toCharArray();
        String alias = args.length == 6 ? args[5] : "wso2carbon";

        X509Certificate oldCert;
        X509Certificate newCert;
        PrivateKey newKey;
        try {
            if ("PEM".equals(args[1])) {
                oldCert = pemCertificate(args[0]);
            } else {
                oldCert = certificate(load(args[0], args[1], pass), alias, args[0]);
            }
            KeyStore newStore = load(args[2], args[3], pass);
            newCert = certificate(newStore, alias, args[2]);
            Key key = newStore.getKey(alias, pass);
            if (!(key instanceof PrivateKey)) {
                throw new IllegalArgumentException(
                        args[2] + " has no private key under alias " + alias);
            }
            newKey = (PrivateKey) key;
        } catch (Exception e) {
            System.err.println("OaepCheck: " + Describe.describe(e));
            System.exit(3);
            return;
        }

        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        String verdict;
        boolean ok;
        try {
            Cipher encrypt = Cipher.getInstance(TRANSFORMATION);
            encrypt.init(Cipher.ENCRYPT_MODE, oldCert.getPublicKey());
            byte[] sealed = encrypt.doFinal(secret);
            Cipher decrypt = Cipher.getInstance(TRANSFORMATION);
            decrypt.init(Cipher.DECRYPT_MODE, newKey);
            byte[] opened = decrypt.doFinal(sealed);
            ok = Arrays.equals(secret, opened);
            verdict = ok ? "OK" : "FAIL decrypted bytes differ from the secret";
        } catch (Exception e) {
            ok = false;
            verdict = "FAIL " + Describe.describe(e);
        }
        System.out.println(verdict);
        System.out.println("old " + summary(oldCert));
        System.out.println("new " + summary(newCert));
        System.out.flush();
        System.exit(ok ? 0 : 1);
    }

    private static KeyStore load(String file, String type, char[] pass) throws Exception {
        KeyStore ks = KeyStore.getInstance(type);
        try (InputStream in = new FileInputStream(file)) {
            ks.load(in, pass);
        }
        return ks;
    }

    private static X509Certificate certificate(KeyStore ks, String alias, String file)
            throws Exception {
        Certificate cert = ks.getCertificate(alias);
        if (!(cert instanceof X509Certificate)) {
            throw new IllegalArgumentException(file + " has no certificate under alias " + alias);
        }
        return (X509Certificate) cert;
    }

    private static X509Certificate pemCertificate(String file) throws Exception {
        try (InputStream in = new FileInputStream(file)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    private static String summary(X509Certificate cert) {
        return "serial=" + cert.getSerialNumber().toString(16)
                + " not_before=" + cert.getNotBefore().getTime() / 1000;
    }
}
