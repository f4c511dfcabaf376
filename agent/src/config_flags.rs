//! Applies a `--config FILE` ([`loadgrade_common::config_file`]) to a command line: each key must be one of the
//! command's long flags, and its values become that flag's default. Flags and environment variables still win, so
//! the precedence is flag > environment > file > built-in default. Used by `loadgrade-agent` and `loadgrade serve`.

use loadgrade_common::config_file::Setting;

/// A config file key that is not a long flag of the command (or is `config` itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "config file: `{flag}` is not a flag of `{command}` (keys are long flag names, e.g. `listen`)"
)]
pub struct UnknownKey {
    /// The key as the file writes it.
    pub flag: String,
    /// The command's name, e.g. `loadgrade-agent` or `serve`.
    pub command: String,
}

/// `command` with the file's `settings` as defaults; an unknown key, or `config` itself, is an error.
pub fn apply(
    mut command: clap::Command,
    settings: &[Setting],
) -> Result<clap::Command, UnknownKey> {
    for setting in settings {
        let id = command
            .get_arguments()
            .find(|a| a.get_long() == Some(setting.flag.as_str()) && setting.flag != "config")
            .map(|a| a.get_id().clone())
            .ok_or_else(|| UnknownKey {
                flag: setting.flag.clone(),
                command: command.get_name().to_owned(),
            })?;
        let values: Vec<clap::builder::OsStr> = setting
            .values
            .iter()
            .map(|v| clap::builder::OsStr::from(v.clone()))
            .collect();
        command = command.mut_arg(id, |arg| arg.default_values(values).required(false));
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> clap::Command {
        clap::Command::new("t")
            .arg(clap::Arg::new("listen").long("listen").required(true))
            .arg(
                clap::Arg::new("allow")
                    .long("allow")
                    .action(clap::ArgAction::Append),
            )
            .arg(clap::Arg::new("config").long("config"))
    }

    #[test]
    fn a_flag_beats_the_file_and_the_file_beats_nothing() {
        let settings =
            loadgrade_common::config_file::parse("listen = \"a\"\nallow = [\"x\", \"y\"]\n")
                .expect("parses");
        let matches = apply(command(), &settings)
            .expect("applies")
            .try_get_matches_from(["t"])
            .expect("the file satisfies a required flag");
        assert_eq!(
            matches.get_one::<String>("listen").map(String::as_str),
            Some("a")
        );
        assert_eq!(
            matches.get_many::<String>("allow").map(Iterator::count),
            Some(2)
        );
        let matches = apply(command(), &settings)
            .expect("applies")
            .try_get_matches_from(["t", "--listen", "b"])
            .expect("parses");
        assert_eq!(
            matches.get_one::<String>("listen").map(String::as_str),
            Some("b")
        );
        let unknown = loadgrade_common::config_file::parse("lisen = \"a\"\n").expect("parses");
        let e = apply(command(), &unknown).expect_err("an unknown key");
        assert_eq!(
            e.to_string(),
            "config file: `lisen` is not a flag of `t` (keys are long flag names, e.g. `listen`)"
        );
    }
}
