//! The command line's shape: every command, argument, help text and exit-code note, as clap
//! definitions. What the commands do is in the library (`apim_pki::commands`); main.rs
//! dispatches.

use std::path::PathBuf;

use apim_pki::Product;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "apim-pki",
    version,
    about = "Certificates, keystores and configuration for distributed WSO2 API Manager",
    long_about = "Certificates, keystores and configuration for distributed WSO2 API Manager.\n\n\
        One topology file describes the nodes, their host names and the load balancers in front \
        of them; apim-pki makes the CA, the shared primary keystore, a TLS keystore per node, the \
        truststores and the load balancers' PEM files, applies them to each node, rotates them, and \
        verifies them offline and live.",
    after_help = concat!(
        "Start here:\n",
        "  apim-pki init --ha > topology.toml              a commented HA topology to edit\n",
        "  apim-pki generate topology.toml --out ../pki    make the set (keep it out of git)\n",
        "  apim-pki verify ../pki                          check it\n\n",
    ),
    after_long_help = concat!(
        "Start here:\n",
        "  apim-pki init --ha > topology.toml              a commented HA topology to edit\n",
        "  apim-pki generate topology.toml --out ../pki    make the set (keep it out of git)\n",
        "  apim-pki verify ../pki                          check it\n\n",
        "Exit codes:\n",
        "  0  done; every check passed\n",
        "  1  a check failed (verify findings, check-host, plan with needs-rotate)\n",
        "  2  bad input; the message names the file, key or line and what to do\n",
        "  70 a bug in apim-pki (an internal error): please report it with the message\n\n",
        "Docs: docs/commands.md and docs/topology.md in the source tree; `apim-pki man` prints a\n",
        "man page, `apim-pki completions SHELL` shell completions.",
    )
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    /// For people.
    Text,
    /// One JSON document on stdout, for scripts.
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Rules {
    /// What a JDK 17 JSSE HTTPS client accepts.
    Java,
    /// RFC 6125 / CA/Browser Forum rules (browsers, Go, rustls).
    Strict,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum CaStepArg {
    /// Create the next CA and add it to every truststore.
    Begin,
    /// Make the next CA the issuer and re-certify every certificate under it.
    Finish,
    /// Drop the previous CA from every truststore.
    Retire,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Print a commented example topology, and the products, profiles and keys it may use.
    #[command(after_help = concat!(
        "Examples:\n",
        "  apim-pki init > topology.toml                            smallest API-M 2.6 topology\n",
        "  apim-pki init --ha > topology.toml                       every 2.6 profile in HA behind load balancers\n",
        "  apim-pki init --product apim-4.x --ha > topology.toml    API-M 4.x in HA\n\n",
        "Exit codes: 0 printed; 2 unknown --product.",
    ))]
    Init(InitArgs),
    /// Say what `generate` would do to each artifact, with the reason; write nothing.
    #[command(after_help = concat!(
        "Each artifact gets one action: create, keep, renew (expires within renew_before_days),\n",
        "reissue (its names changed; same key), update (a derived file: node.toml, a truststore),\n",
        "needs-rotate (a changed key type or CA: only `rotate` can do it), remove (no longer in the\n",
        "topology: moved to history/). Every artifact is listed, also when some need rotate.\n\n",
        "Examples:\n",
        "  apim-pki plan topology.toml --out ../pki\n",
        "  apim-pki plan topology.toml --out ../pki --format json | jq '.actions[] | select(.action != \"keep\")'\n\n",
        "Exit codes: 0 planned; 1 some artifact needs `rotate` (generate would refuse); 2 bad input.",
    ))]
    Plan(PlanArgs),
    /// Bring DIR in line with the topology: CA, keystores, truststores, load-balancer PEMs.
    #[command(after_help = concat!(
        "Creates what is missing, renews what expires within renew_before_days, reissues (same key)\n",
        "what names changed, moves what a removed node had to history/. Never replaces a key: that\n",
        "is `rotate`. An unchanged topology changes no file. Passwords come from the variables named\n",
        "in [passwords], or are generated into DIR/secrets.toml (0600).\n\n",
        "Examples:\n",
        "  apim-pki generate topology.toml --out ../pki\n",
        "  APIM_TLS_PASSWORD=... apim-pki generate topology.toml --out /secure/pki\n",
        "  apim-pki generate topology.toml --out ../pki --format json\n\n",
        "Exit codes: 0 done; 2 bad input (also: an artifact needs `rotate`, a password variable the\n",
        "set was made with is unset).",
    ))]
    Generate(GenerateArgs),
    /// Replace keys or certificates on purpose: nodes, load balancers, the primary's
    /// certificate, or a staged CA rollover. With no selector, re-keys EVERY node and load
    /// balancer.
    #[command(after_help = concat!(
        "Reconciles like generate first, then forces what the options say:\n",
        "  --node / --load-balancer   new key and certificate for those only\n",
        "  (no option at all)         new keys and certificates for EVERY node and load balancer\n",
        "  --primary-cert             new certificate for the same primary key (data stays readable)\n",
        "  --ca begin|finish|retire   one stage of a staged CA rollover (docs/runbooks/ca-rollover.md)\n",
        "--primary-cert and --ca re-key no node. Replaced files go to DIR/history/<timestamp>/.\n",
        "The output ends with what to ship to which node.\n\n",
        "Examples:\n",
        "  apim-pki rotate topology.toml --out ../pki --node gw1 --dry-run\n",
        "  apim-pki rotate topology.toml --out ../pki --load-balancer gw.acme.internal\n",
        "  apim-pki rotate topology.toml --out ../pki --ca begin\n\n",
        "Exit codes: 0 done (or planned, with --dry-run); 1 --dry-run found an artifact that still\n",
        "needs rotate; 2 bad input or a refused step (a rollover stage out of order).",
    ))]
    Rotate(RotateArgs),
    /// For a corporate CA: write a key (0600) and a CSR for every node and load balancer.
    #[command(after_help = concat!(
        "Writes DIR/csr/<node or load-balancer host>.key and .csr with the right subject and SANs.\n",
        "Existing keys are kept (run it again to renew). Have the CSRs signed, then run import-signed.\n\n",
        "Examples:\n",
        "  apim-pki csr topology.toml --out ../pki\n",
        "  apim-pki csr topology.toml --out ../pki --format json\n\n",
        "Exit codes: 0 written; 2 bad input.",
    ))]
    Csr(CsrArgs),
    /// Take the signed certificates back and assemble keystores and truststores.
    #[command(after_help = concat!(
        "PATH is a PEM file or a directory of them: the leaf certificates and the CA chain\n",
        "(intermediates and root). Each certificate is matched to its key by public key; one whose\n",
        "key or names do not match its node is refused.\n\n",
        "Examples:\n",
        "  apim-pki import-signed ../pki --certs signed/\n",
        "  apim-pki import-signed ../pki --certs signed-bundle.pem\n\n",
        "Exit codes: 0 assembled; 2 bad input (a certificate that does not match, a missing one).",
    ))]
    ImportSigned(ImportSignedArgs),
    /// Check a generated set: names, keys, chains, truststores, validity; with --live, the
    /// running endpoints.
    #[command(after_help = concat!(
        "Each problem is a finding with a stable code (docs/commands.md lists them all). --live\n",
        "probes every node's 9443 (gateways also 8243, traffic managers 9711, plus offsets) and every\n",
        "load balancer's 9443 (8243 for the gateways'). --connect, --connect-file and --timeout\n",
        "need --live; the same HOST:PORT mapped to two addresses is refused.\n\n",
        "Examples:\n",
        "  apim-pki verify ../pki\n",
        "  apim-pki verify ../pki --live --timeout 5\n",
        "  apim-pki verify ../pki --live --connect km.acme.internal:9443=10.0.1.11:9443 --format json\n\n",
        "Exit codes: 0 no error (warnings allowed); 1 at least one error finding; 2 DIR unreadable,\n",
        "a password variable unset, a bad argument.",
    ))]
    Verify(VerifyArgs),
    /// Say whether the certificate in FILE is valid for each HOST, under JSSE's rules and RFC
    /// 6125's.
    #[command(after_help = concat!(
        "FILE is a PEM certificate, or a keystore with exactly one private-key entry. A host with\n",
        "one trailing dot (gw.acme.internal.) is checked without it, as JDK 17 and curl do; JDK\n",
        "11.0.10 refuses such a name (the reason says so). Keystore passwords come from\n",
        "--password-env or --password-file, else a prompt when stdin is a terminal.\n\n",
        "Examples:\n",
        "  apim-pki check-host ../pki/load-balancers/gw.acme.internal/tls.crt gw.acme.internal\n",
        "  apim-pki check-host ../pki/nodes/gw1/repository/resources/security/gw1-tls.jks gw1.acme.internal --password-env APIM_TLS_PASSWORD\n",
        "  apim-pki check-host cert.pem '*.acme.internal' 10.0.1.11 --rules strict --format json\n\n",
        "Exit codes: 0 every host covered; 1 a host not covered (under --rules); 2 bad input.",
    ))]
    CheckHost(CheckHostArgs),
    /// Install one node's keystores into an unpacked API-M and write its configuration (2.6: the
    /// XML files; 3.2, 4.x, 4.5+: merged into the product's deployment.toml).
    #[command(after_help = concat!(
        "Edits carbon.xml, catalina-server.xml, axis2.xml, api-manager.xml, jndi.properties and the\n",
        "other files holding keystore settings in place, changing those values and nothing else;\n",
        "copies each original to .apim-pki-backup/<timestamp>/ first; a second run changes nothing.\n",
        "See docs/apply-2.6.md. For API-M 3.2, 4.x and 4.5+ it merges the node's tables into\n",
        "repository/conf/deployment.toml instead: see docs/apply-deployment-toml.md.\n\n",
        "Examples:\n",
        "  apim-pki apply ../pki --node km1 --apim-home /opt/wso2am-2.6.0 --dry-run\n",
        "  apim-pki apply ../pki --node km1 --apim-home /opt/wso2am-2.6.0\n\n",
        "Exit codes: 0 applied (or planned); 2 bad input (unknown node, not an API-M home, a\n",
        "password variable unset).",
    ))]
    Apply(ApplyArgs),
    /// Write a set's keystores, truststore and passwords for another delivery channel.
    #[command(
        subcommand,
        after_help = concat!(
            "Channels: kubernetes (Secret manifests and Helm values for WSO2's 4.x charts).\n\n",
            "Examples:\n",
            "  apim-pki export kubernetes ../pki --node gw1\n",
            "  apim-pki export kubernetes ../pki --profile gateway-worker --out ../k8s\n\n",
            "Exit codes: 0 written; 2 bad input (see `apim-pki export kubernetes --help`).",
        )
    )]
    Export(ExportTarget),
    /// List the entries of a JKS, PKCS#12 or PEM file.
    #[command(after_help = concat!(
        "Per entry: alias, kind, subject, issuer, SANs, serial, validity, key, SHA-256 fingerprint.\n\n",
        "Examples:\n",
        "  apim-pki inspect ../pki/ca/ca.crt\n",
        "  apim-pki inspect ../pki/nodes/km1/repository/resources/security/client-truststore.jks --password-env APIM_TRUSTSTORE_PASSWORD\n",
        "  apim-pki inspect wso2carbon.p12 --password-file pw.txt --format json\n\n",
        "Exit codes: 0 listed; 2 unreadable file or wrong password.",
    ))]
    Inspect(InspectArgs),
    /// Print shell completions for apim-pki.
    #[command(after_help = concat!(
        "Examples:\n",
        "  apim-pki completions bash > ~/.local/share/bash-completion/completions/apim-pki\n",
        "  apim-pki completions zsh > \"${fpath[1]}/_apim-pki\"\n",
        "  apim-pki completions fish > ~/.config/fish/completions/apim-pki.fish\n",
        "  apim-pki completions powershell >> $PROFILE\n\n",
        "Exit codes: 0 printed; 2 unknown shell.",
    ))]
    Completions(CompletionsArgs),
    /// Print the man page (roff) of apim-pki or of one of its commands.
    #[command(after_help = concat!(
        "Examples:\n",
        "  apim-pki man | man -l -\n",
        "  apim-pki man verify > apim-pki-verify.1\n\n",
        "Exit codes: 0 printed; 2 unknown command.",
    ))]
    Man(ManArgs),
}

/// The shells `completions` knows.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

/// Where `export` delivers.
#[derive(Subcommand)]
pub(crate) enum ExportTarget {
    /// Secret manifests for WSO2's Helm charts (4.x), a kustomization and the values that
    /// point the chart at them, one folder per node.
    #[command(
        group(clap::ArgGroup::new("which").required(true).args(["node", "profile"])),
        after_help = concat!(
            "Writes OUT/<node>/ for each node (0600, atomically): keystores-secret.yaml (Secret\n",
            "<node>-keystores: the keystores and truststore, keyed by file name, mounted by the chart\n",
            "through jksSecretName), passwords-secret.yaml (Secret <node>-keystore-passwords, read by\n",
            "charts 4.6.x and later through jksExistingSecret), kustomization.yaml listing both,\n",
            "values.yaml (no password) and values-passwords.yaml (SECRET, for charts 4.2.x-4.5.x).\n",
            "Passwords come from secrets.toml or the variables the set was made with. Only file names\n",
            "are printed. API-M 4.x sets only. See docs/kubernetes.md.\n\n",
            "Examples:\n",
            "  apim-pki export kubernetes ../pki --node gw1\n",
            "  apim-pki export kubernetes ../pki --profile control-plane --out ../k8s\n",
            "  kubectl apply -k ../pki/kubernetes/gw1     (then: helm ... -f ../pki/kubernetes/gw1/values.yaml)\n\n",
            "Exit codes: 0 written; 2 bad input (unknown node or profile, a 2.6 or 3.2 set, a password\n",
            "variable unset, a store that does not open).",
        )
    )]
    Kubernetes(KubernetesArgs),
}

/// `--format`, as most commands take it.
#[derive(Args)]
pub(crate) struct Output {
    /// Output for people (text) or scripts (json).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

/// Where a keystore's password comes from (`check-host`, `inspect`); a prompt when neither.
#[derive(Args)]
pub(crate) struct PasswordArgs {
    /// Environment variable holding the keystore password.
    #[arg(long, conflicts_with = "password_file", value_name = "VAR")]
    pub(crate) password_env: Option<String>,
    /// File holding the keystore password (one trailing newline stripped).
    #[arg(long, value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
}

impl From<PasswordArgs> for apim_pki::PasswordInput {
    fn from(a: PasswordArgs) -> Self {
        apim_pki::PasswordInput {
            env: a.password_env,
            file: a.password_file,
        }
    }
}

// The arguments of `Init`.
#[derive(Args)]
pub(crate) struct InitArgs {
    /// The WSO2 API-M release line the topology targets.
    #[arg(long, default_value = "apim-2.6", value_name = "PRODUCT",
          value_parser = clap::builder::PossibleValuesParser::new(Product::ALL.map(Product::as_str)))]
    pub(crate) product: String,
    /// Two nodes per profile, each profile behind a load balancer.
    #[arg(long)]
    pub(crate) ha: bool,
}

// The arguments of `Plan`.
#[derive(Args)]
pub(crate) struct PlanArgs {
    /// The topology file (see docs/topology.md; `apim-pki init` prints one).
    #[arg(value_name = "TOPOLOGY")]
    pub(crate) topology: PathBuf,
    /// The set's directory (it need not exist yet). Keep it out of version control.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) output: Output,
}

// The arguments of `Generate`.
#[derive(Args)]
pub(crate) struct GenerateArgs {
    /// The topology file (see docs/topology.md; `apim-pki init` prints one).
    #[arg(value_name = "TOPOLOGY")]
    pub(crate) topology: PathBuf,
    /// The set's directory, created if missing. Holds keys and secrets.toml: keep it out of
    /// version control.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Output for people (text) or scripts (json: every artifact's action).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

// The arguments of `Rotate`.
#[derive(Args)]
pub(crate) struct RotateArgs {
    /// The topology file the set was made from.
    #[arg(value_name = "TOPOLOGY")]
    pub(crate) topology: PathBuf,
    /// The set's directory, as given to generate.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// New key and certificate for this node (repeatable).
    #[arg(long = "node", value_name = "NAME")]
    pub(crate) nodes: Vec<String>,
    /// New key and certificate for this load balancer (repeatable).
    #[arg(long = "load-balancer", value_name = "HOST")]
    pub(crate) load_balancers: Vec<String>,
    /// Re-certify the primary key with a new validity; the key stays.
    #[arg(long)]
    pub(crate) primary_cert: bool,
    /// Staged CA rollover step: begin, then finish, then retire; ship between steps.
    #[arg(long, value_enum, value_name = "STEP")]
    pub(crate) ca: Option<CaStepArg>,
    /// Say what would happen, file by file; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) output: Output,
}

// The arguments of `Csr`.
#[derive(Args)]
pub(crate) struct CsrArgs {
    /// The topology file.
    #[arg(value_name = "TOPOLOGY")]
    pub(crate) topology: PathBuf,
    /// The set's directory; CSRs go to DIR/csr/.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) output: Output,
}

// The arguments of `ImportSigned`.
#[derive(Args)]
pub(crate) struct ImportSignedArgs {
    /// The directory `csr` wrote into.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// The signed certificates: a PEM file or a directory of PEM files, intermediates included.
    #[arg(long, value_name = "PATH")]
    pub(crate) certs: PathBuf,
    #[command(flatten)]
    pub(crate) output: Output,
}

// The arguments of `Verify`.
#[derive(Args)]
pub(crate) struct VerifyArgs {
    /// A directory made by `generate` (it holds inventory.json).
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// Also probe the running endpoints over TLS.
    #[arg(long)]
    pub(crate) live: bool,
    /// With --live: connect to ADDR:PORT whenever HOST:PORT is probed (repeatable), e.g.
    /// where DNS does not resolve the names yet.
    #[arg(long, value_name = "HOST:PORT=ADDR:PORT", requires = "live")]
    pub(crate) connect: Vec<String>,
    /// With --live: a file of HOST:PORT=ADDR:PORT lines (`#` comments allowed).
    #[arg(long, value_name = "FILE", requires = "live")]
    pub(crate) connect_file: Option<PathBuf>,
    /// With --live: seconds each probe may take, more than 0 and at most 600 [default: 3].
    #[arg(long, value_name = "SECS", requires = "live")]
    pub(crate) timeout: Option<f64>,
    /// Warn about certificates expiring within N days (default: renew_before_days).
    #[arg(long, value_name = "N")]
    pub(crate) warn_days: Option<u32>,
    /// Verify an applied home instead (with --node): for 3.2/4.x/4.5+ the keystores and
    /// peers its deployment.toml names; for every release its secure vault.
    #[arg(long, requires = "node", conflicts_with = "live")]
    pub(crate) apim_home: Option<PathBuf>,
    /// The node whose applied home --apim-home is.
    #[arg(long, requires = "apim_home")]
    pub(crate) node: Option<String>,
    /// Output for people (text) or scripts (json: ok, ca_stage, summary, findings).
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: Format,
}

// The arguments of `CheckHost`.
#[derive(Args)]
pub(crate) struct CheckHostArgs {
    /// A PEM certificate, or a JKS / PKCS#12 keystore with one private-key entry.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// The host names or IP addresses clients use to reach it.
    #[arg(required = true, value_name = "HOST")]
    pub(crate) hosts: Vec<String>,
    /// Which verdict decides the exit code.
    #[arg(long, value_enum, default_value = "java")]
    pub(crate) rules: Rules,
    #[command(flatten)]
    pub(crate) password: PasswordArgs,
    #[command(flatten)]
    pub(crate) output: Output,
}

// The arguments of `Apply`.
#[derive(Args)]
pub(crate) struct ApplyArgs {
    /// A directory made by `generate`.
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// The node to apply, as named in the topology.
    #[arg(long, value_name = "NAME")]
    pub(crate) node: String,
    /// The root of the unpacked API-M on this node (the directory holding bin/ and repository/).
    #[arg(long, value_name = "PATH")]
    pub(crate) apim_home: PathBuf,
    /// Print what would change; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Variable holding the node's current truststore password, when carbon.xml keeps it in secure vault.
    #[arg(long, value_name = "VAR")]
    pub(crate) existing_truststore_password_env: Option<String>,
    #[command(flatten)]
    pub(crate) output: Output,
}

// The arguments of `Inspect`.
#[derive(Args)]
pub(crate) struct InspectArgs {
    /// A JKS or PKCS#12 keystore, or a PEM file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    #[command(flatten)]
    pub(crate) password: PasswordArgs,
    #[command(flatten)]
    pub(crate) output: Output,
}

// The arguments of `Completions`.
#[derive(Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: Shell,
}

// The arguments of `Man`.
#[derive(Args)]
pub(crate) struct ManArgs {
    /// A command (verify, rotate, ...); the main page without it.
    #[arg(value_name = "COMMAND")]
    pub(crate) command: Option<String>,
}

// The arguments of `Kubernetes`.
#[derive(Args)]
pub(crate) struct KubernetesArgs {
    /// A directory made by `generate` (it holds inventory.json).
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
    /// The node to export, as named in the topology.
    #[arg(long, value_name = "NAME")]
    pub(crate) node: Option<String>,
    /// Export every node of this profile (control-plane, gateway-worker, traffic-manager, key-manager).
    #[arg(long, value_name = "PROFILE")]
    pub(crate) profile: Option<String>,
    /// The folder to write into, one sub-folder per node [default: DIR/kubernetes].
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) output: Output,
}
