//! `tern passwd`: manages the broker's password file, with mosquitto_passwd's usage.
//!
//! Rules:
//! - `tern passwd [-c | -D] passwordfile username`, `tern passwd [-c] -b passwordfile
//!   username password`. Without `-c` the file must exist; `-c` creates it, or overwrites it
//!   with just this user. `-D` deletes a user (one that is not there is an error).
//! - Without `-b` the password is asked twice at the terminal, not echoed; when standard
//!   input is not a terminal, its first line (without `\n` or `\r\n`) is the password.
//!   Empty passwords are refused.
//! - Each password gets a random 16-byte salt and `-I` PBKDF2 iterations (4096 by default,
//!   at least 4096); the line is `<user>:SCRAM-SHA-256$...`, the format of the broker's
//!   `auth.password_file` and `auth.scram_file` ([`mod@file`] edits it).
//! - Nothing is written when anything is wrong; errors start with `Error:`, say what to do,
//!   and exit 1, as mosquitto_passwd's do. Success prints nothing.

mod file;

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tern_broker::auth::credentials::{DEFAULT_ITERATIONS, MIN_ITERATIONS, SALT_BYTES};
use tern_broker::auth::ScramCredentials;

use file::{PasswordFile, MAX_FIELD};

/// The usage lines of `tern passwd`.
const USAGE: &str = "\
tern passwd [-I iterations] [-c | -D] passwordfile username
       tern passwd [-I iterations] [-c] -b passwordfile username password
       tern passwd --help";

/// `tern passwd --help`.
const HELP: &str = "\
tern passwd is a tool for managing password files for tern broker.

Usage: tern passwd [-I iterations] [-c | -D] passwordfile username
       tern passwd [-I iterations] [-c] -b passwordfile username password
       tern passwd --help
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -I : PBKDF2 iterations for the new password, at least 4096. Defaults to 4096.
      More make each check slower, for the broker and for anyone guessing.
      Also --iterations.
 --help : display this message.

Without -b the password is asked for twice and not shown. When standard input is
not a terminal, its first line is the password (printf '%s\\n' \"$PASS\" | tern passwd ...).

Each line of the file is <username>:SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
(RFC 5803); no password is stored. Other lines are kept as they are. The file is
replaced atomically and left readable by its owner only (mode 0600).
Point the broker at it with auth.password_file (CONNECT username and password) and,
if MQTT v5 clients use SCRAM-SHA-256, auth.scram_file: the same file serves both.
mosquitto_passwd hashes cannot be converted (they do not hold the password).

See docs/configuration.md for more information.";

/// Options of `tern passwd`.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    disable_version_flag = true,
    override_help = HELP,
    override_usage = USAGE
)]
pub(crate) struct PasswdArgs {
    /// Create the file, or overwrite it.
    #[arg(short = 'c')]
    create: bool,
    /// Delete the user.
    #[arg(short = 'D')]
    delete: bool,
    /// The password is on the command line.
    #[arg(short = 'b')]
    batch: bool,
    /// PBKDF2 iterations.
    #[arg(short = 'I', long = "iterations", value_name = "ITERATIONS",
          default_value_t = DEFAULT_ITERATIONS)]
    iterations: u32,
    /// mosquitto_passwd's plain-text conversion, which has nothing to do here.
    #[arg(short = 'U', hide = true)]
    update: bool,
    /// mosquitto_passwd's hash choice; tern's file has one.
    #[arg(short = 'H', hide = true, value_name = "HASH")]
    hash: Option<String>,
    /// The password file.
    #[arg(value_name = "PASSWORDFILE")]
    file: Option<PathBuf>,
    /// The user.
    #[arg(value_name = "USERNAME")]
    user: Option<String>,
    /// The password, with -b.
    #[arg(value_name = "PASSWORD")]
    password: Option<OsString>,
    /// Print this help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    help: Option<bool>,
}

/// Why `tern passwd` stopped.
enum Failure {
    /// The command line is wrong: the message, then the usage.
    Usage(String),
    /// Something else: the message.
    Error(String),
}

/// Runs `tern passwd`.
pub(crate) fn run(args: PasswdArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("Error: {message}\n\nUsage: {USAGE}");
            ExitCode::FAILURE
        }
        Err(Failure::Error(message)) => {
            eprintln!("Error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(args: PasswdArgs) -> Result<(), Failure> {
    let usage = |message: &str| Err(Failure::Usage(message.to_owned()));
    if args.update {
        return usage(
            "-U converts mosquitto's plain-text password files; tern passwd never writes plain-text \
             passwords, so there is nothing to convert. Add each user with tern passwd passwordfile username.",
        );
    }
    if args.hash.is_some() {
        return usage("-H is not needed: tern's password file always holds SCRAM-SHA-256 credentials (PBKDF2-HMAC-SHA-256); choose their cost with -I.");
    }
    if args.create && args.delete {
        return usage("-c and -D cannot be used together.");
    }
    if args.delete && args.batch {
        return usage("-D takes no password: tern passwd -D passwordfile username.");
    }
    let (Some(path), Some(user)) = (&args.file, &args.user) else {
        return usage("a password file and a username are needed.");
    };
    match (&args.password, args.batch) {
        (None, true) => return usage("-b needs the password after the username."),
        (Some(_), false) => {
            return usage(
                "a password on the command line needs -b; without -b the password is asked for.",
            )
        }
        _ => {}
    }
    if args.iterations < MIN_ITERATIONS {
        return usage("-I must be at least 4096 (RFC 7677), which the broker requires.");
    }
    file::check_user(user).map_err(|e| Failure::Error(format!("invalid username: {e}")))?;

    let mut passwords = match args.create {
        true => PasswordFile::default(),
        false => load(path)?,
    };
    if args.delete {
        if !passwords.delete(user) {
            return Err(Failure::Error(format!(
                "user {user} is not in {}; nothing changed.",
                path.display()
            )));
        }
    } else {
        let password = read_password(args.password)?;
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt)
            .map_err(|e| Failure::Error(format!("cannot read random bytes for the salt: {e}")))?;
        let credentials = ScramCredentials::derive_from_bytes(&password, &salt, args.iterations);
        passwords.set(user, &credentials);
    }
    match file::save(path, &passwords.text()) {
        Ok(None) => Ok(()),
        Ok(Some(warning)) => {
            eprintln!("Warning: {warning}");
            Ok(())
        }
        Err(e) => Err(Failure::Error(format!(
            "cannot write {}: {e}. Nothing changed; check that its directory exists and is writable.",
            path.display()
        ))),
    }
}

/// Reads and parses an existing password file.
fn load(path: &std::path::Path) -> Result<PasswordFile, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => " Use -c to create a new password file.",
            _ => "",
        };
        Failure::Error(format!(
            "cannot open password file {}: {e}.{hint}",
            path.display()
        ))
    })?;
    PasswordFile::parse(&bytes).map_err(|bad| {
        Failure::Error(format!(
            "{}:{}: {}. Fix or delete that line (each line is <username>:SCRAM-SHA-256$..., as \
             tern passwd writes them), or start again with -c; the broker refuses the file as it is.",
            path.display(),
            bad.line,
            bad.reason
        ))
    })
}

/// The password: from `-b`, asked twice at a terminal, or the first line of a pipe.
fn read_password(batch: Option<OsString>) -> Result<Vec<u8>, Failure> {
    let error = |message: String| Failure::Error(message);
    let password = match batch {
        Some(password) => password.into_vec(),
        None if std::io::stdin().is_terminal() => {
            let ask = |prompt: &str| {
                rpassword::prompt_password(prompt)
                    .map_err(|e| error(format!("cannot read the password from the terminal: {e}")))
            };
            let first = ask("Password: ")?;
            let again = ask("Reenter password: ")?;
            if first != again {
                return Err(error("Passwords do not match.".to_owned()));
            }
            first.into_bytes()
        }
        None => {
            let mut line = Vec::new();
            std::io::stdin()
                .lock()
                .read_until(b'\n', &mut line)
                .map_err(|e| error(format!("cannot read the password from standard input: {e}")))?;
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            line
        }
    };
    if password.is_empty() {
        return Err(error("Empty password.".to_owned()));
    }
    if password.len() > MAX_FIELD {
        return Err(error(
            "the password is longer than 65535 bytes, the most an MQTT CONNECT can carry."
                .to_owned(),
        ));
    }
    Ok(password)
}
