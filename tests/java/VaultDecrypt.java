import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.Key;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Properties;
import javax.crypto.Cipher;
import javax.crypto.CipherOutputStream;

/**
 * Test helper of apim-pki: decrypts a secure vault the way WSO2's runtime does at start-up
 * (carbon-kernel's SecretManagerInitializer, org.wso2.securevault's SecretManager,
 * FileBaseSecretRepository and BaseCipher, at the versions API-M 2.6 to 4.6 ship).
 *
 * <pre>
 * java -cp DIR VaultDecrypt HOME PASSWORD_ENV (CASE SECRET_CONF CIPHER_TEXT)...
 * </pre>
 *
 * <p>Each CASE is one vault, set up from scratch (one JVM serves many, to keep tests fast).
 *
 * <p>HOME plays the JVM's working directory (the start scripts cd to CARBON_HOME), against which
 * a relative keystore.identity.location resolves. PASSWORD_ENV names the environment variable
 * holding the keystore password, which DefaultSecretCallbackHandler gives as both store and key
 * password (password-tmp / password-persist / prompt). The steps follow the runtime:
 * <ol>
 * <li>secret-conf.properties through Properties.load; secVault.enabled (default true);</li>
 * <li>keystore.identity.type through an exact-name switch (KeyStoreType.valueOf);</li>
 * <li>JKS: KeyStore.getInstance("JKS"); PKCS12: KeyStore.getInstance("PKCS12", "SunJSSE")
 * (JKSKeyStoreLoader / PKCS12KeyStoreLoader); the private key of keystore.identity.alias;</li>
 * <li>Cipher.getInstance(secretRepositories.file.algorithm, default "RSA"), DECRYPT_MODE;</li>
 * <li>per alias of secretRepositories.file.location (Properties.load): value trimmed, empty
 * skipped, base64-decoded ignoring whitespace (Axiom Base64Utils), run through a
 * CipherOutputStream in 64-byte chunks whose close() errors are ignored, and new String(bytes)
 * (platform charset).</li>
 * </ol>
 * Prints one line per alias of each case, aliases sorted:
 * <pre>
 * CASE OK alias sha256=&lt;hex of the UTF-8 plaintext&gt; opens=yes|no
 * CASE EMPTY alias      (the runtime got no bytes and resolves the alias to its own name)
 * CASE FAIL alias Class: message
 * CASE SETUP - Class: message   (the vault of this case cannot be set up)
 * </pre>
 * opens says whether the plaintext opens the vault keystore itself. Exit 0 when every alias of
 * every case is OK, 1 otherwise, 3 on a usage error.
 */
public final class VaultDecrypt {
    private VaultDecrypt() {}

    public static void main(String[] args) {
        if (args.length < 5 || (args.length - 2) % 3 != 0) {
            System.err.println("VaultDecrypt: usage: VaultDecrypt HOME PASSWORD_ENV"
                    + " (CASE SECRET_CONF CIPHER_TEXT)...");
            System.exit(3);
        }
        String password = System.getenv(args[1]);
        if (password == null) {
            System.err.println("VaultDecrypt: environment variable " + args[1] + " is not set");
            System.exit(3);
        }
        File home = new File(args[0]);
        boolean allOk = true;
        for (int i = 2; i < args.length; i += 3) {
            allOk &= runCase(args[i], home, new File(args[i + 1]), new File(args[i + 2]), password);
        }
        System.out.flush();
        System.exit(allOk ? 0 : 1);
    }

    /** One vault, set up from scratch as a server start would. */
    private static boolean runCase(String name, File home, File secretConf, File cipherText,
            String password) {
        Cipher cipher;
        File location;
        String type;
        try {
            Properties conf = load(secretConf);
            if (!Boolean.parseBoolean(conf.getProperty("secVault.enabled", "true").trim())) {
                throw new IllegalStateException("secVault.enabled is false: the vault is off");
            }
            String repos = conf.getProperty("secretRepositories", "").trim();
            if (!repos.equals("file")) {
                throw new IllegalStateException("secretRepositories is '" + repos + "', not 'file'");
            }
            String provider = conf.getProperty("secretRepositories.file.provider", "").trim();
            if (!provider.equals(
                    "org.wso2.securevault.secret.repository.FileBaseSecretRepositoryProvider")) {
                throw new IllegalStateException("unexpected repository provider '" + provider + "'");
            }
            location = resolve(home, required(conf, "keystore.identity.location"));
            type = required(conf, "keystore.identity.type");
            KeyStore ks = open(location, type, password);
            String alias = required(conf, "keystore.identity.alias");
            Key key = ks.getKey(alias, password.toCharArray());
            if (!(key instanceof PrivateKey)) {
                throw new IllegalStateException("no private key under alias " + alias);
            }
            String algorithm = conf.getProperty("secretRepositories.file.algorithm");
            if (algorithm == null || algorithm.length() == 0) {
                algorithm = "RSA";
            }
            cipher = Cipher.getInstance(algorithm.trim());
            cipher.init(Cipher.DECRYPT_MODE, key);
        } catch (Exception e) {
            System.out.println(name + " SETUP - " + Describe.describe(e));
            return false;
        }

        boolean allOk = true;
        try {
            Properties texts = load(cipherText);
            List<String> aliases = new ArrayList<>(texts.stringPropertyNames());
            Collections.sort(aliases);
            for (String alias : aliases) {
                String encrypted = texts.getProperty(alias);
                if (encrypted == null || encrypted.trim().isEmpty()) {
                    continue;
                }
                String line;
                try {
                    byte[] plain = decrypt(cipher, encrypted.trim().getBytes());
                    if (plain.length == 0) {
                        line = "EMPTY " + alias;
                        allOk = false;
                    } else {
                        String text = new String(plain);
                        line = "OK " + alias + " sha256=" + sha256(text) + " opens="
                                + (opens(location, type, text) ? "yes" : "no");
                    }
                } catch (Exception e) {
                    line = "FAIL " + alias + " " + Describe.describe(e);
                    allOk = false;
                }
                System.out.println(name + " " + line);
            }
        } catch (Exception e) {
            System.out.println(name + " SETUP - " + Describe.describe(e));
            return false;
        }
        return allOk;
    }

    /** BaseCipher.doCipherOperation: decode, stream through the cipher, ignore close errors. */
    private static byte[] decrypt(Cipher cipher, byte[] input) throws IOException {
        InputStream source = new ByteArrayInputStream(
                Base64.getMimeDecoder().decode(new String(input, StandardCharsets.ISO_8859_1)));
        ByteArrayOutputStream baos = new ByteArrayOutputStream();
        CipherOutputStream out = new CipherOutputStream(baos, cipher);
        byte[] buffer = new byte[64];
        int length;
        try {
            while ((length = source.read(buffer)) != -1) {
                out.write(buffer, 0, length);
            }
        } finally {
            try {
                source.close();
                out.flush();
                out.close();
            } catch (IOException ignored) {
                // BaseCipher ignores it too: a failed doFinal leaves no bytes.
            }
        }
        return baos.toByteArray();
    }

    private static KeyStore open(File location, String type, String password) throws Exception {
        KeyStore ks;
        switch (type) {
            case "JKS":
                ks = KeyStore.getInstance("JKS");
                break;
            case "PKCS12":
                ks = KeyStore.getInstance("PKCS12", "SunJSSE");
                break;
            default:
                throw new IllegalArgumentException(
                        "No enum constant org.wso2.securevault.KeyStoreType." + type);
        }
        try (InputStream in = new FileInputStream(location)) {
            ks.load(in, password.toCharArray());
        }
        return ks;
    }

    private static final java.util.Map<String, Boolean> OPENS = new java.util.HashMap<>();

    /** Whether the plaintext opens the vault keystore (remembered: loads are slow). */
    private static boolean opens(File location, String type, String password) {
        String key = location.getAbsolutePath() + "\u0000" + type + "\u0000" + password;
        return OPENS.computeIfAbsent(key, k -> {
            try {
                open(location, type, password);
                return true;
            } catch (Exception e) {
                return false;
            }
        });
    }

    private static Properties load(File file) throws IOException {
        Properties p = new Properties();
        try (InputStream in = new FileInputStream(file)) {
            p.load(in);
        }
        return p;
    }

    private static String required(Properties p, String key) {
        String v = p.getProperty(key);
        if (v == null || v.trim().isEmpty()) {
            throw new IllegalStateException(key + " is missing");
        }
        return v.trim();
    }

    private static File resolve(File home, String location) {
        File f = new File(location);
        return f.isAbsolute() ? f : new File(home, location);
    }

    private static String sha256(String text) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        StringBuilder sb = new StringBuilder();
        for (byte b : d) {
            sb.append(String.format("%02x", b & 0xff));
        }
        return sb.toString();
    }
}
