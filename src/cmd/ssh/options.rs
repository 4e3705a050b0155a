//! What `wbl ssh` needs to know of an ssh command line: where the destination is, where the
//! remote command starts, `-N`, `-t`/`-T`; and the ssh options that cannot go with a forward
//! (`-f`, `-s`, `-G`, `-V`, `-O`), refused with the reason.

use std::ffi::OsString;

/// ssh's options that take an argument (OpenSSH 9: `ssh -?`).
const WITH_ARGUMENT: &str = "BbcDEeFIiJLlmOoPpQRSWw";

/// What wbl needs to know of the ssh command line.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::cmd) struct Parsed {
    /// Arguments up to and including the destination and the options after it (ssh reads
    /// options there too); the remote command starts after them.
    pub(in crate::cmd) head: usize,
    pub(in crate::cmd) destination: String,
    /// `-N`: no remote command.
    pub(in crate::cmd) no_command: bool,
    /// `-t` (`Some(true)`) or `-T` (`Some(false)`) was given.
    pub(in crate::cmd) tty: Option<bool>,
}

pub(in crate::cmd) fn parse_ssh_args(args: &[OsString]) -> Result<Parsed, String> {
    let mut destination: Option<String> = None;
    let mut no_command = false;
    let mut tty = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        if arg == "--" {
            if destination.is_none() {
                i += 1;
                let d = args.get(i).ok_or("no destination after `--`")?;
                destination = Some(d.to_string_lossy().into_owned());
            }
            i += 1;
            break;
        }
        if arg.len() > 1 && arg.starts_with('-') {
            let flags: Vec<char> = arg[1..].chars().collect();
            for (k, &f) in flags.iter().enumerate() {
                if WITH_ARGUMENT.contains(f) {
                    if k + 1 == flags.len() {
                        i += 1;
                        if i >= args.len() {
                            return Err(format!("ssh option -{f} needs an argument"));
                        }
                    }
                    break;
                }
                match f {
                    'N' => no_command = true,
                    't' => tty = Some(true),
                    'T' => tty = Some(false),
                    'f' => {
                        return Err("ssh -f (go to the background) would outlive wbl ssh, \
                                    which ends the grant when ssh exits; run `wbl ssh` itself \
                                    in the background instead"
                            .into());
                    }
                    's' | 'G' | 'V' | 'O' => {
                        return Err(format!(
                            "wbl ssh runs a session with a forward; ssh -{f} does not open one"
                        ));
                    }
                    _ => {}
                }
            }
            i += 1;
            continue;
        }
        if destination.is_some() {
            break;
        }
        destination = Some(arg.into_owned());
        i += 1;
    }
    let destination = destination
        .ok_or("no destination: usage `wbl ssh [OPTIONS] -- [ssh options] HOST [command]`")?;
    Ok(Parsed {
        head: i,
        destination,
        no_command,
        tty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn destination_options_and_command() {
        let p = parse_ssh_args(&os(&["-p", "2222", "-i", "k", "gpu", "python", "t.py"])).unwrap();
        assert_eq!(p.destination, "gpu");
        assert_eq!(p.head, 5);
        let p = parse_ssh_args(&os(&["-F/x", "-vt", "gpu", "-l", "me", "ls"])).unwrap();
        assert_eq!(
            (p.destination.as_str(), p.head, p.tty),
            ("gpu", 5, Some(true))
        );
        let p = parse_ssh_args(&os(&["-N", "user@gpu"])).unwrap();
        assert!(p.no_command);
        let p = parse_ssh_args(&os(&["-o", "X=y", "--", "gpu", "-x"])).unwrap();
        assert_eq!((p.destination.as_str(), p.head), ("gpu", 4));
        assert!(parse_ssh_args(&os(&["-p"])).is_err());
        assert!(parse_ssh_args(&os(&["-v"])).is_err());
        assert!(parse_ssh_args(&os(&["-f", "gpu"])).is_err());
        assert!(parse_ssh_args(&os(&["-G", "gpu"])).is_err());
    }
}
