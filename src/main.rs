//! The apim-pki command line: parse arguments (cli.rs), call the library
//! (`apim_pki::commands`), print the report, map the outcome to an exit code (0 done, 1 a check
//! failed, 2 bad input, 70 a bug in apim-pki).

mod cli;

use std::io::Write;
use std::process::ExitCode;

use apim_pki::commands::{self, Error, LiveOptions};
use apim_pki::HostRules;
use apim_pki::{CaStep, Mode, Rotation};
use clap::{CommandFactory, Parser};
use cli::{
    CaStepArg, CheckHostArgs, Cli, Command, ExportTarget, Format, RotateArgs, Rules, Shell,
    VerifyArgs,
};

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

/// Reports a failure on stderr (`error:`, its causes, `hint:`): exit 2, or 70 for a bug.
fn fail(e: Error) -> ExitCode {
    let _ = std::io::stderr().lock().write_all(e.render().as_bytes());
    ExitCode::from(e.exit_code())
}

/// 0 when every check passed, 1 when one failed.
fn status(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Init(a) => print_all(&commands::init(&a.product, a.ha)?),
        Command::Completions(a) => completions(a.shell),
        Command::Man(a) => man(a.command.as_deref()),
        Command::Plan(a) => reconciled(
            a.output.format,
            commands::reconcile(&a.topology, &a.out, Mode::Plan, None)?,
        ),
        Command::Generate(a) => reconciled(
            a.format,
            commands::reconcile(&a.topology, &a.out, Mode::Generate, None)?,
        ),
        Command::Rotate(a) => rotate(a),
        Command::Csr(a) => {
            let written = commands::csr(&a.topology, &a.out)?;
            emit(a.output.format, &written, |w| written.render_text(w))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ImportSigned(a) => {
            reconciled(a.output.format, commands::import_signed(&a.dir, &a.certs)?)
        }
        Command::Verify(a) => verify(a),
        Command::CheckHost(a) => check_host(a),
        Command::Apply(a) => {
            let env = a.existing_truststore_password_env.as_deref();
            let applied = commands::apply(&a.dir, &a.node, &a.apim_home, a.dry_run, env)?;
            emit(a.output.format, &applied, |w| applied.render_text(w))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(ExportTarget::Kubernetes(a)) => {
            let exported =
                commands::export_kubernetes(&a.dir, a.node, a.profile, a.out.as_deref())?;
            emit(a.output.format, &exported, |w| exported.render_text(w))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect(a) => {
            let listing = commands::inspect(&a.file, &a.password.into())?;
            emit(a.output.format, &listing, |w| listing.render_text(w))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `apim-pki rotate`.
fn rotate(a: RotateArgs) -> Result<ExitCode, Error> {
    let ca = a.ca.map(|c| match c {
        CaStepArg::Begin => CaStep::Begin,
        CaStepArg::Finish => CaStep::Finish,
        CaStepArg::Retire => CaStep::Retire,
    });
    let rotation = Rotation::new(a.nodes, a.load_balancers, a.primary_cert, ca);
    let mode = if a.dry_run {
        Mode::Plan
    } else {
        Mode::Generate
    };
    reconciled(
        a.output.format,
        commands::reconcile(&a.topology, &a.out, mode, Some(&rotation))?,
    )
}

/// `apim-pki verify`: a set (offline, and with --live its endpoints), or an applied home.
fn verify(a: VerifyArgs) -> Result<ExitCode, Error> {
    let verified = match (a.apim_home, a.node) {
        (Some(home), Some(node)) => commands::verify_home(&a.dir, &node, &home)?,
        _ => {
            let live = a.live.then_some(LiveOptions {
                connect: a.connect,
                connect_file: a.connect_file,
                timeout: a.timeout.unwrap_or(3.0),
            });
            commands::verify(&a.dir, live.as_ref(), a.warn_days)?
        }
    };
    emit(a.format, &verified.report, |w| verified.render_text(w))?;
    Ok(status(verified.report.ok))
}

/// `apim-pki check-host`: 1 when a host is not covered under `--rules`.
fn check_host(a: CheckHostArgs) -> Result<ExitCode, Error> {
    let report = commands::check_host(&a.file, &a.hosts, &a.password.into())?;
    emit(a.output.format, &report, |w| report.render_text(w))?;
    Ok(status(report.passes(match a.rules {
        Rules::Java => HostRules::Java,
        Rules::Strict => HostRules::Strict,
    })))
}

/// Prints what plan, generate, rotate or import-signed did; 1 for a plan that needs rotate.
fn reconciled(format: Format, done: commands::Reconciled) -> Result<ExitCode, Error> {
    if let Some(note) = done.note() {
        eprintln!("{note}");
    }
    emit(format, &done.json(), |w| done.render_text(w))?;
    Ok(status(done.passed()))
}

/// `apim-pki completions SHELL`.
fn completions(shell: Shell) -> Result<ExitCode, Error> {
    let mut out = Vec::new();
    let mut cmd = Cli::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    clap_complete::generate(shell, &mut cmd, "apim-pki", &mut out);
    print_all(&String::from_utf8_lossy(&out))
}

/// `apim-pki man [COMMAND]`: the roff man page of the tool or of one command.
fn man(command: Option<&str>) -> Result<ExitCode, Error> {
    let root = Cli::command().name("apim-pki");
    let page = match command {
        None => root,
        Some(name) => {
            let known: Vec<String> = root
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let sub = root
                .find_subcommand(name)
                .cloned()
                .ok_or_else(|| Error::UnknownCommand {
                    name: name.to_string(),
                    known,
                })?;
            sub.name(format!("apim-pki-{name}"))
                .version(env!("CARGO_PKG_VERSION"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| apim_pki::Bug::new(format!("rendering the man page failed: {e}")))?;
    print_all(&String::from_utf8_lossy(&out))
}

/// Writes `text` to stdout.
fn print_all(text: &str) -> Result<ExitCode, Error> {
    write_stdout(|w| w.write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints `value` as JSON, or for people through `text`.
fn emit<T: serde::Serialize>(
    format: Format,
    value: &T,
    text: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
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
fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match write(&mut stdout).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Stdout(e)),
        _ => Ok(()),
    }
}
