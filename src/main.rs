//! The apim-pki command line: parse arguments (cli.rs), call the library
//! (`apim_pki::commands`), print the report, map the outcome to an exit code (0 done, 1 a check
//! failed, 2 bad input, 70 a bug in apim-pki).

mod cli;

use std::io::Write;
use std::process::ExitCode;

use apim_pki::commands::{self, Error, LiveOptions};
use apim_pki::prompt::PasswordInput;
use apim_pki::reconcile::{CaStep, Mode, Rotation};
use apim_pki::verify::HostRules;
use clap::{CommandFactory, Parser};
use cli::{CaStepArg, Cli, Command, ExportTarget, Format, Rules, Shell};

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
        Command::Init { product, ha } => print_all(&commands::init(&product, ha)?),
        Command::Completions { shell } => completions(shell),
        Command::Man { command } => man(command.as_deref()),
        Command::Plan {
            topology,
            out,
            format,
        } => reconciled(
            format,
            commands::reconcile(&topology, &out, Mode::Plan, None)?,
        ),
        Command::Generate {
            topology,
            out,
            format,
        } => reconciled(
            format,
            commands::reconcile(&topology, &out, Mode::Generate, None)?,
        ),
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
                CaStepArg::Begin => CaStep::Begin,
                CaStepArg::Finish => CaStep::Finish,
                CaStepArg::Retire => CaStep::Retire,
            });
            let rotation = Rotation::new(nodes, load_balancers, primary_cert, ca);
            let mode = if dry_run { Mode::Plan } else { Mode::Generate };
            let done = commands::reconcile(&topology, &out, mode, Some(&rotation))?;
            reconciled(format, done)
        }
        Command::Csr {
            topology,
            out,
            format,
        } => {
            let written = commands::csr(&topology, &out)?;
            emit(format, &written, |w| written.render_text(w))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ImportSigned { dir, certs, format } => {
            reconciled(format, commands::import_signed(&dir, &certs)?)
        }
        Command::Verify {
            dir,
            live,
            connect,
            connect_file,
            timeout,
            warn_days,
            apim_home,
            node,
            format,
        } => {
            let verified = match (apim_home, node) {
                (Some(home), Some(node)) => commands::verify_home(&dir, &node, &home)?,
                _ => {
                    let live = live.then_some(LiveOptions {
                        connect,
                        connect_file,
                        timeout: timeout.unwrap_or(3.0),
                    });
                    commands::verify(&dir, live.as_ref(), warn_days)?
                }
            };
            emit(format, &verified.report, |w| verified.render_text(w))?;
            Ok(status(verified.report.ok))
        }
        Command::CheckHost {
            file,
            hosts,
            rules,
            password_env,
            password_file,
            format,
        } => {
            let password = PasswordInput {
                env: password_env,
                file: password_file,
            };
            let report = commands::check_host(&file, &hosts, &password)?;
            emit(format, &report, |w| report.render_text(w))?;
            Ok(status(report.passes(match rules {
                Rules::Java => HostRules::Java,
                Rules::Strict => HostRules::Strict,
            })))
        }
        Command::Apply {
            dir,
            node,
            apim_home,
            dry_run,
            existing_truststore_password_env,
            format,
        } => {
            let env = existing_truststore_password_env.as_deref();
            let applied = commands::apply(&dir, &node, &apim_home, dry_run, env)?;
            emit(format, &applied, |w| applied.render_text(w))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(ExportTarget::Kubernetes {
            dir,
            node,
            profile,
            out,
            format,
        }) => {
            let exported = commands::export_kubernetes(&dir, node, profile, out.as_deref())?;
            emit(format, &exported, |w| exported.render_text(w))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect {
            file,
            password_env,
            password_file,
            format,
        } => {
            let password = PasswordInput {
                env: password_env,
                file: password_file,
            };
            let listing = commands::inspect(&file, &password)?;
            emit(format, &listing, |w| listing.render_text(w))?;
            Ok(ExitCode::SUCCESS)
        }
    }
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
        .map_err(|e| apim_pki::error::Bug::new(format!("rendering the man page failed: {e}")))?;
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
