//! The apim-pki command line: parse arguments, call the library, print, map errors to exit codes
//! (0 done, 1 a check failed, 2 bad input).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use apim_pki::input::{self, Limit};
use apim_pki::inspect;
use apim_pki::password::Password;
use apim_pki::reconcile::{self, Mode};
use apim_pki::topology::{Product, Topology};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "apim-pki",
    version,
    about = "Certificates, keystores and configuration for distributed WSO2 API Manager"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Rules {
    Java,
    Strict,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum CaStepArg {
    Begin,
    Finish,
    Retire,
}

#[derive(Subcommand)]
enum Command {
    /// Print a commented example topology.
    Init {
        /// apim-2.6, apim-3.2 or apim-4.x.
        #[arg(long, default_value = "apim-2.6")]
        product: String,
        /// Every profile in HA behind load balancers.
        #[arg(long)]
        ha: bool,
    },
    /// Say what `generate` would do to each artifact; write nothing.
    Plan {
        topology: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Bring DIR in line with the topology: CA, keystores, truststores, load-balancer PEMs.
    Generate {
        topology: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Replace keys and certificates on purpose: nodes, load balancers, the primary's
    /// certificate, or a staged CA rollover. Reconciles like generate first.
    Rotate {
        topology: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// New key and certificate for this node (repeatable).
        #[arg(long = "node")]
        nodes: Vec<String>,
        /// New key and certificate for this load balancer (repeatable).
        #[arg(long = "load-balancer")]
        load_balancers: Vec<String>,
        /// Re-certify the primary key with a new validity; the key stays.
        #[arg(long)]
        primary_cert: bool,
        /// Staged CA rollover step.
        #[arg(long, value_enum)]
        ca: Option<CaStepArg>,
        /// Say what would happen; write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// For a corporate CA: write a key (0600) and a CSR for every node and load balancer.
    Csr {
        topology: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Take the signed certificates back (PEM file or directory, intermediates included) and
    /// assemble keystores and truststores.
    ImportSigned {
        dir: PathBuf,
        #[arg(long)]
        certs: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Check a generated set: names, keys, chains, truststores, validity (and live endpoints).
    Verify {
        dir: PathBuf,
        /// Also probe the running endpoints.
        #[arg(long)]
        live: bool,
        /// Send HOST:PORT to ADDR:PORT instead (repeatable).
        #[arg(long, value_name = "HOST:PORT=ADDR:PORT")]
        connect: Vec<String>,
        /// A file of --connect lines.
        #[arg(long)]
        connect_file: Option<PathBuf>,
        /// Seconds each live probe may take.
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
        /// Warn about certificates expiring within N days (default: renew_before_days).
        #[arg(long)]
        warn_days: Option<u32>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Say whether the certificate in FILE is valid for each HOST (JSSE and RFC 6125 rules).
    CheckHost {
        file: PathBuf,
        #[arg(required = true)]
        hosts: Vec<String>,
        /// Which verdict decides the exit code.
        #[arg(long, value_enum, default_value = "java")]
        rules: Rules,
        #[arg(long, conflicts_with = "password_file")]
        password_env: Option<String>,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Install one node's keystores into an unpacked API-M 2.6 and write its configuration.
    Apply {
        dir: PathBuf,
        #[arg(long)]
        node: String,
        #[arg(long)]
        apim_home: PathBuf,
        /// Print what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Variable holding the node's current truststore password, when carbon.xml keeps it in secure vault.
        #[arg(long)]
        existing_truststore_password_env: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// List the entries of a JKS, PKCS#12 or PEM file.
    Inspect {
        file: PathBuf,
        /// Environment variable holding the keystore password.
        #[arg(long, conflicts_with = "password_file")]
        password_env: Option<String>,
        /// File holding the keystore password (one trailing newline stripped).
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

/// Prints `value` as JSON, or for people through `text`.
fn emit<T: serde::Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Failure> {
    write_stdout(|stdout| match format {
        Format::Json => serde_json::to_writer_pretty(&mut *stdout, value)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(stdout)),
        Format::Text => text(stdout),
    })
}

/// Writes to stdout and flushes. A reader that went away (EPIPE, as in `| head`) ends the
/// output quietly: the work is done and the command keeps its status. Any other failure (a full
/// device) is an error, exit 2. Never a panic, unlike `print!`.
fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match write(&mut stdout).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::new(format!("cannot write to stdout: {e}"), None))
        }
        _ => Ok(()),
    }
}

/// An error for the user: what went wrong, and what to do.
struct Failure {
    message: String,
    hint: Option<String>,
}

impl Failure {
    fn new(message: impl ToString, hint: Option<String>) -> Failure {
        Failure {
            message: message.to_string(),
            hint,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => e.exit(),
        // --help and --version: to stdout, with the same care as every other output.
        Err(e) => {
            let printed = write_stdout(|_| e.print());
            return printed.map_or_else(fail, |()| ExitCode::from(e.exit_code() as u8));
        }
    };
    run(cli).unwrap_or_else(fail)
}

/// Reports a failure on stderr: exit 2.
fn fail(f: Failure) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {}", f.message);
    if let Some(h) = f.hint {
        let _ = writeln!(err, "hint: {h}");
    }
    ExitCode::from(2)
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Init { product, ha } => {
            let product = Product::parse(&product).ok_or_else(|| {
                Failure::new(
                    format!("--product `{product}` is not one of apim-2.6, apim-3.2, apim-4.x"),
                    None,
                )
            })?;
            let example = apim_pki::init::example(product, ha);
            write_stdout(|w| w.write_all(example.as_bytes()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            topology,
            out,
            format,
        } => reconcile_cmd(&topology, &out, Mode::Plan, None, format),
        Command::Generate {
            topology,
            out,
            format,
        } => reconcile_cmd(&topology, &out, Mode::Generate, None, format),
        Command::Inspect {
            file,
            password_env,
            password_file,
            format,
        } => inspect_cmd(&file, password_env, password_file, format),
        Command::Verify {
            dir,
            live,
            connect,
            connect_file,
            timeout,
            warn_days,
            format,
        } => {
            let live = live.then_some(LiveArgs {
                connect,
                connect_file,
                timeout,
            });
            verify_cmd(&dir, live, warn_days, format)
        }
        Command::Rotate {
            topology,
            out,
            nodes,
            load_balancers,
            primary_cert,
            ca,
            dry_run,
            format,
        } => {
            let ca = ca.map(|c| match c {
                CaStepArg::Begin => reconcile::CaStep::Begin,
                CaStepArg::Finish => reconcile::CaStep::Finish,
                CaStepArg::Retire => reconcile::CaStep::Retire,
            });
            let rotation = reconcile::Rotation::new(nodes, load_balancers, primary_cert, ca);
            let mode = if dry_run { Mode::Plan } else { Mode::Generate };
            reconcile_cmd(&topology, &out, mode, Some(&rotation), format)
        }
        Command::Csr {
            topology,
            out,
            format,
        } => csr_cmd(&topology, &out, format),
        Command::ImportSigned { dir, certs, format } => import_signed_cmd(&dir, &certs, format),
        Command::Apply {
            dir,
            node,
            apim_home,
            dry_run,
            existing_truststore_password_env,
            format,
        } => apply_cmd(
            &dir,
            &node,
            &apim_home,
            dry_run,
            existing_truststore_password_env,
            format,
        ),
        Command::CheckHost {
            file,
            hosts,
            rules,
            password_env,
            password_file,
            format,
        } => check_host_cmd(&file, &hosts, rules, password_env, password_file, format),
    }
}

fn load_topology(path: &Path) -> Result<Topology, Failure> {
    Topology::load(path).map_err(|e| {
        let hint = e.hint.clone();
        Failure::new(e, hint)
    })
}

fn reconcile_cmd(
    topology_path: &Path,
    out: &Path,
    mode: Mode,
    rotation: Option<&reconcile::Rotation>,
    format: Format,
) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let topology = load_topology(topology_path)?;
    let result = match rotation {
        Some(r) => reconcile::rotate(&topology, out, r, mode),
        None => reconcile::reconcile(&topology, out, mode),
    };
    let outcome = result.map_err(|e| {
        let hint = e.hint();
        Failure::new(e, hint)
    })?;
    emit(
        format,
        &serde_json::json!({ "actions": outcome.actions }),
        |w| {
            apim_pki::reconcile::render_text(
                w,
                &topology,
                out,
                &outcome,
                mode,
                started.elapsed().as_secs_f64(),
            )
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn read_password(env: Option<String>, file: Option<PathBuf>) -> Result<Option<Password>, Failure> {
    if let Some(var) = env {
        return std::env::var(&var)
            .map(|v| Some(Password::new(v)))
            .map_err(|_| {
                Failure::new(
                    format!("--password-env: the variable {var} is not set"),
                    Some(format!("export {var} first")),
                )
            });
    }
    if let Some(path) = file {
        let mut text = input::read_to_string(&path, Limit::Password).map_err(|e| {
            Failure::new(
                format!("{}: cannot read the password file: {e}", path.display()),
                None,
            )
        })?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        return Ok(Some(Password::new(text)));
    }
    if std::io::stdin().is_terminal() {
        let value = rpassword::prompt_password("Keystore password: ")
            .map_err(|e| Failure::new(format!("cannot read the password: {e}"), None))?;
        return Ok(Some(Password::new(value)));
    }
    Ok(None)
}

fn inspect_cmd(
    file: &Path,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    format: Format,
) -> Result<ExitCode, Failure> {
    let bytes = input::read(file, Limit::Certificate)
        .map_err(|e| Failure::new(format!("{}: cannot read: {e}", file.display()), None))?;
    let password = if inspect::needs_password(&bytes) {
        read_password(password_env, password_file)?
    } else {
        None
    };
    let listing = inspect::inspect(&bytes, password.as_ref())
        .map_err(|e| Failure::new(format!("{}: {e}", file.display()), None))?;
    emit(format, &listing, |w| inspect::render_text(&listing, w))?;
    Ok(ExitCode::SUCCESS)
}

/// `--live` and its options.
struct LiveArgs {
    connect: Vec<String>,
    connect_file: Option<PathBuf>,
    timeout: f64,
}

fn verify_cmd(
    dir: &Path,
    live: Option<LiveArgs>,
    warn_days: Option<u32>,
    format: Format,
) -> Result<ExitCode, Failure> {
    use apim_pki::verify::offline::{verify_set, OpenedSet, Options};
    let set = OpenedSet::open(dir).map_err(|e| {
        let hint = e.hint();
        Failure::new(e, hint)
    })?;
    let mut report =
        apim_pki::verify::name_password_sources(&set, verify_set(&set, &Options { warn_days }));
    if let Some(live) = live {
        let overrides = connect_overrides(&live)?;
        if !(live.timeout > 0.0 && live.timeout <= 600.0) {
            return Err(Failure::new(
                "--timeout must be between 0 and 600 seconds",
                None,
            ));
        }
        report = apim_pki::verify::with_live(
            &set,
            report,
            &overrides,
            std::time::Duration::from_secs_f64(live.timeout),
        );
    }
    emit(format, &report, |w| report.render_text(&set.view.name, w))?;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn connect_overrides(
    live: &LiveArgs,
) -> Result<Vec<apim_pki::verify::live::ConnectOverride>, Failure> {
    use apim_pki::verify::live;
    let mut overrides = Vec::new();
    let conflict = |e: String| Failure::new(e, None);
    for spec in &live.connect {
        let one = live::parse_connect(spec).map_err(|e| {
            Failure::new(
                format!("--connect {spec}: {e}"),
                Some(
                    "write HOST:PORT=ADDR:PORT, e.g. km.acme.internal:9443=127.0.0.1:19443".into(),
                ),
            )
        })?;
        live::merge_overrides(&mut overrides, vec![one], &format!("--connect {spec}"))
            .map_err(conflict)?;
    }
    if let Some(path) = &live.connect_file {
        let text = input::read_to_string(path, Limit::ConnectFile).map_err(|e| {
            Failure::new(
                format!("--connect-file {}: cannot read it: {e}", path.display()),
                None,
            )
        })?;
        let lines = live::parse_connect_file(&text)
            .map_err(|e| Failure::new(format!("{}: {e}", path.display()), None))?;
        live::merge_overrides(&mut overrides, lines, &path.display().to_string())
            .map_err(conflict)?;
    }
    Ok(overrides)
}

fn check_host_cmd(
    file: &Path,
    hosts: &[String],
    rules: Rules,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    format: Format,
) -> Result<ExitCode, Failure> {
    let bytes = input::read(file, Limit::Certificate)
        .map_err(|e| Failure::new(format!("{}: cannot read: {e}", file.display()), None))?;
    let password = if inspect::needs_password(&bytes) {
        read_password(password_env, password_file)?
    } else {
        None
    };
    let name = file.display().to_string();
    let report = apim_pki::verify::check_host(&name, &bytes, password.as_ref(), hosts)
        .map_err(|e| Failure::new(format!("{name}: {e}"), None))?;
    emit(format, &report, |w| {
        writeln!(w, "{}  {}", report.file, report.subject)?;
        for h in &report.hosts {
            let yes = |b: bool| if b { "yes" } else { "no " };
            writeln!(
                w,
                "  {:<32} java: {}  strict: {}  {}",
                h.host,
                yes(h.java),
                yes(h.strict),
                h.reason
            )?;
        }
        Ok(())
    })?;
    let pass = report.hosts.iter().all(|h| match rules {
        Rules::Java => h.java,
        Rules::Strict => h.strict,
    });
    Ok(if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn apply_cmd(
    dir: &Path,
    node: &str,
    home: &Path,
    dry_run: bool,
    truststore_env: Option<String>,
    format: Format,
) -> Result<ExitCode, Failure> {
    use apim_pki::config::apim26;
    let existing_truststore_password = match truststore_env {
        Some(var) => Some(
            read_password(Some(var), None)?
                .ok_or_else(|| Failure::new("no truststore password", None))?,
        ),
        None => None,
    };
    let options = apim26::ApplyOptions {
        dry_run,
        existing_truststore_password,
    };
    let report = apim26::apply(dir, node, home, &options).map_err(|e| {
        let hint = e.hint();
        Failure::new(e, hint)
    })?;
    emit(format, &report, |w| apim26::render_text(&report, w))?;
    Ok(ExitCode::SUCCESS)
}

fn csr_cmd(topology_path: &Path, out: &Path, format: Format) -> Result<ExitCode, Failure> {
    let topology = load_topology(topology_path)?;
    let written = apim_pki::corporate::write_csrs(topology_path, &topology, out).map_err(|e| {
        let hint = e.hint();
        Failure::new(e, hint)
    })?;
    emit(format, &written, |w| {
        let width = written.iter().map(|c| c.csr.len()).max().unwrap_or(0);
        for c in &written {
            let key = if c.new_key { "new key" } else { "key kept" };
            writeln!(w, "  {:<width$}  {}  ({key})", c.csr, c.names.join(" "))?;
        }
        writeln!(
            w,
            "\n{} CSRs in {}/csr. Have your CA sign them (keep subject and SANs), then:",
            written.len(),
            out.display()
        )?;
        writeln!(w, "  apim-pki import-signed {} --certs SIGNED.pem   (leaf certificates plus the CA chain)", out.display())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn import_signed_cmd(dir: &Path, certs: &Path, format: Format) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let outcome = apim_pki::corporate::import_signed(dir, certs).map_err(|e| {
        let hint = e.hint();
        Failure::new(e, hint)
    })?;
    let topology_path = dir.join(apim_pki::corporate::CSR_TOPOLOGY);
    let topology = load_topology(&topology_path)?;
    emit(
        format,
        &serde_json::json!({ "actions": outcome.actions }),
        |w| {
            reconcile::render_text(
                w,
                &topology,
                dir,
                &outcome,
                Mode::Generate,
                started.elapsed().as_secs_f64(),
            )
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
