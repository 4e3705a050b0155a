//! The `wbl` command line: every subcommand, its options, its one-line summary and its
//! example (`after_help`). Each subcommand's options are one `Args` struct that `main` hands
//! as it is to the subcommand's `cmd::` module. In the library so that `wbl completions` and
//! `wbl man` (and the tests) see the same definition the client parses with.

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wbl",
    version,
    about = "Keep W&B API keys in the OS keychain instead of ~/.netrc",
    after_help = "Examples:\n  wbl login                    # store your W&B API key in the keychain\n  wbl exec -- python train.py  # run with WANDB_API_KEY set from it\n  wbl token                    # print it, for scripts\n  wbl status                   # where each host's key comes from\n  wbl agent install            # start the agent with your login session"
)]
pub struct Cli {
    /// Colour and check marks in `doctor` and `status`: auto (on a terminal, unless NO_COLOR
    /// is set), always or never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t)]
    pub color: crate::term::ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Log in to W&B: store your API key in the keychain (like `wandb login`, without a netrc).
    #[command(
        long_about = "Log in to W&B: store your API key in the OS keychain, through wbl-agent.\n\n\
            Without KEY, the key is looked for in this order:\n  \
            1. the WANDB_API_KEY environment variable (used, not stored)\n  \
            2. the keychain (already stored)\n  \
            3. api_key in the global or workspace W&B settings file\n  \
            4. the netrc file (NETRC, ~/.netrc or ~/_netrc)\n  \
            5. a hidden prompt, when stdin and stderr are a terminal\n\n\
            A key found in a settings or netrc file is copied into the keychain; `wbl migrate` \
            then removes the plaintext copy. Keys are stored without asking the server unless \
            --verify is given.",
        after_help = "Examples:\n  \
            wbl login                                   # find a key or prompt for it\n  \
            pass show wandb | wbl login -               # read the key from stdin\n  \
            wbl login --verify                          # ask the server who the key belongs to\n  \
            wbl login --host https://wandb.example.com  # a self-hosted W&B server\n  \
            wbl login --cloud                           # back to https://api.wandb.ai\n  \
            wbl login --relogin                         # ignore stored keys and prompt"
    )]
    Login(LoginArgs),
    /// Print the stored key for a host on stdout (exit 1 when there is none).
    #[command(after_help = "Example:\n  export WANDB_API_KEY=$(wbl token)")]
    Token(TokenArgs),
    /// Run a command with the key in its environment (WANDB_API_KEY), never on a command line.
    #[command(
        after_help = "Examples:\n  wbl exec -- python train.py --epochs 3\n  wbl exec --host https://wandb.example.com -- wandb sync ./wandb"
    )]
    Exec(ExecArgs),
    /// Remove a host's W&B key (or every W&B key) from the keychain and the agent's cache.
    #[command(
        after_help = "Examples:\n  wbl logout\n  wbl logout --host https://wandb.example.com\n  wbl logout --all          # every W&B key; git credentials stay\n  wbl logout --all --git    # every key, git credentials too"
    )]
    Logout(LogoutArgs),
    /// Act as a git credential helper (get, store, erase), backed by the keychain.
    #[command(
        after_help = "Example:\n  printf 'protocol=https\\nhost=api.wandb.ai\\n' | wbl credential get\n\ngit runs it by itself once `wbl setup-git` has configured it."
    )]
    Credential(CredentialArgs),
    /// ssh to a machine with a forwarded, restricted agent: keys for granted hosts there, none stored.
    #[command(
        long_about = "Run the system's ssh with a forwarded, restricted wbl-agent socket, so that \
            `wbl exec`, `wbl token` and git (through `wbl credential`) on the remote machine get \
            keys from this machine's keychain while nothing is stored over there.\n\n\
            The remote may only get keys for the granted hosts: the current W&B host (--host \
            rules: WANDB_BASE_URL, base_url in the settings, else the cloud) and every --allow. \
            It cannot list, store or erase keys, see the agent's status or stop it. The grant \
            ends when ssh exits, or after --ttl. Every key handed out is logged here with the \
            destination; `wbl status` lists live forwards.\n\n\
            The socket lands in a fresh directory on the remote that only you can enter, made \
            by a short ssh connection of its own just before the session (with password logins \
            you are asked twice), so it is yours alone whatever the server's \
            StreamLocalBindMask. On the remote, WBL_SOCKET points at it for the remote command or \
            login shell (set through `env WBL_SOCKET=... sh -c ...` around it, so the remote \
            login shell must understand POSIX quoting: sh, bash, zsh, ksh, fish). With ssh -N, \
            no command runs: set WBL_SOCKET yourself to the path printed. Needs OpenSSH 6.7 or \
            later on both sides and `AllowStreamLocalForwarding` (the default) on the server.",
        after_help = "Examples:\n  \
            wbl ssh -- gpu-box                                  # a login shell with WBL_SOCKET set\n  \
            wbl ssh -- gpu-box wbl exec -- python train.py     # one command\n  \
            wbl ssh --allow https://git.example.com --ttl 8h -- -p 2222 me@gpu-box\n  \
            wbl ssh --hold gpu --ttl 8h                         # for RemoteForward in ~/.ssh/config\n\n\
            Exit status: ssh's (the remote command's), or 1 when the forward could not be opened."
    )]
    Ssh(SshArgs),
    /// Configure git to get and store credentials for a URL through wbl.
    #[command(
        name = "setup-git",
        after_help = "Example:\n  wbl setup-git --host https://git.example.com\n  wbl setup-git --host https://git.example.com --remove"
    )]
    SetupGit(SetupGitArgs),
    /// Move keys from plaintext files (netrc, W&B settings, ~/.git-credentials) to the keychain.
    #[command(
        after_help = "Example:\n  wbl migrate --dry-run\n  wbl migrate --git-credentials\n  wbl migrate --docker      # registry logins in ~/.docker/config.json, podman's auth.json"
    )]
    Migrate(MigrateArgs),
    /// Find the copies of your keys that already sit in files (exact keys, no guessing).
    #[command(
        long_about = "Search files for the exact keys the agent holds, in the forms they leak \
            in: the key itself, HTTP Basic auth (base64 of `api:KEY`, or `user:password` for \
            git and docker), base64 inside longer text, and URL-encoded. By default the W&B \
            key of every host wbl knows of; with --all every credential the agent can read \
            (git, docker, hosts routed to a team's OpenBao).\n\n\
            Each copy is printed with its file, line and column, its form and which key it is \
            (host, user name, last four characters; never the key) and what to do: `wbl \
            migrate` for netrc, W&B settings and git-credentials files, otherwise remove it, \
            and rotate the key when the file left the machine (a git history, a synced W&B \
            run).\n\n\
            No .gitignore is honoured (leaks sit in ignored files); files with a NUL byte in \
            their first block are skipped unless --binary; no symbolic link is followed; \
            other file systems are not entered unless --cross-filesystems. Compressed data \
            (gzip, git's packed or loose objects) is not decompressed: search a repository's \
            history with `git log -p | grep` or by checking out its commits.",
        after_help = "Examples:\n  \
            wbl scan                         # your home and the current directory\n  \
            wbl scan ~/projects /data/runs   # these trees\n  \
            wbl scan --all --json . | jq -r .path\n\n\
            Exit status: 0 nothing found, 1 copies found, 2 an error."
    )]
    Scan(ScanArgs),
    /// Run the agent with your login session, start, stop or inspect it.
    #[command(
        after_help = "Examples:\n  wbl agent install --now   # systemd socket activation (Linux) or a LaunchAgent (macOS)\n  wbl agent status\n  wbl agent stop"
    )]
    Agent(AgentArgs),
    /// Unlock the Secret Service's default keyring (Linux), or create it where there is none.
    #[command(after_help = "Examples:\n  \
            wbl keyring unlock                      # asks for the keyring's password\n  \
            pass show login | wbl keyring unlock    # reads it from stdin")]
    Keyring(KeyringArgs),
    /// Check the keychain, the agent, its service and plaintext copies of keys; say how to fix each problem.
    #[command(
        long_about = "Check everything wbl depends on and say how to fix what is wrong: the session \
            D-Bus, the Secret Service and whether its default collection is unlocked, the kernel \
            keyring, the agent (running, same version, socket modes), the keychain backend it \
            uses, the systemd units or LaunchAgent, the configuration file (it parses, and no \
            other user could have changed it or a directory above it) and the OpenBao servers \
            its routes name (up and unsealed), the accounts its bindings and defaults name (`wbl bind`, \
            `wbl switch`; with a running agent), whether the access log can be written, \
            plaintext copies of keys (netrc, W&B settings api_key, ~/.git-credentials, registry \
            logins in ~/.docker/config.json and podman's auth.json), \
            WANDB_API_KEY in the environment, and whether git asks wbl for the W&B host.\n\n\
            Each check prints a verdict (ok, WARNING, PROBLEM, skipped), the time it took, what \
            it found and, when something is wrong, the command that fixes it. wbl doctor only \
            looks: it never starts the agent or a Secret Service and changes nothing. Every \
            check that talks to another process gives up after a few seconds.",
        after_help = "Examples:\n  \
            wbl doctor\n  \
            wbl doctor --json | jq '.checks[] | select(.verdict != \"ok\")'\n\n\
            Exit status: 0 when no check finds a problem (warnings alone keep 0), 1 otherwise."
    )]
    Doctor(DoctorArgs),
    /// Show who used your keys: every get, store and erase the agent answered, with the program.
    #[command(
        long_about = "Show who used your keys. The agent records every get, store and erase it answers: \
            when, for which host and user name, the result (ok, miss, refused, error), and the \
            calling program: its pid, executable and three parents (nearest first), and the \
            channel (local, or the destination of a forward). Secrets are never recorded.\n\n\
            The agent keeps the log in $XDG_STATE_HOME/wbl/access.log (by default \
            ~/.local/state/wbl/access.log), rotated at 4 MiB with three older files kept. A \
            program the agent could not identify safely (it exited at once, so its pid might \
            belong to another program by then) is shown as unknown.",
        after_help = "Examples:\n  \
            wbl log                                  # everything kept, as a table\n  \
            wbl log --since 1h --host api.wandb.ai   # the last hour, one host\n  \
            wbl log --follow                         # watch requests as they come\n  \
            wbl log -n 20 --follow                   # the last 20, then the new ones\n  \
            wbl log --json | jq -r 'select(.op == \"get\") | .parents[0].exe'"
    )]
    Log(LogArgs),
    /// Print the shell completion script for bash, zsh, fish, powershell or elvish.
    #[command(after_help = "Examples:\n  \
            wbl completions bash > ~/.local/share/bash-completion/completions/wbl\n  \
            wbl completions zsh > ~/.zfunc/_wbl    # with fpath+=(~/.zfunc) before compinit in ~/.zshrc\n  \
            wbl completions fish > ~/.config/fish/completions/wbl.fish\n  \
            wbl completions powershell >> $PROFILE")]
    Completions(CompletionsArgs),
    /// Write the manual pages (wbl.1, one per subcommand, wbl-agent.1) into a directory.
    #[command(after_help = "Example:\n  wbl man --out ~/.local/share/man/man1 && man wbl")]
    Man(ManArgs),
    /// Team keys in OpenBao / Vault: log the agent in to a server of config.toml.
    #[command(
        name = "openbao",
        after_help = "Example:\n  wbl openbao login team\n\nServers and the hosts routed to them are set in $XDG_CONFIG_HOME/wbl/config.toml (WBL_CONFIG overrides); see docs/openbao.md."
    )]
    Openbao(OpenBaoArgs),
    /// List every host's accounts, the default of each host and the directories bound to one.
    #[command(
        after_help = "Examples:\n  wbl accounts\n  wbl accounts --names   # one name a line (for completions)"
    )]
    Accounts(AccountsArgs),
    /// Use account NAME under a directory (default: the current one) for its W&B host.
    #[command(
        long_about = "Use account NAME under DIR (default: the current directory) for the W&B \
            host that directory uses (--host, else where the SDK reads it: ./wandb/settings \
            base_url, WANDB_BASE_URL, the global settings, the cloud). Recorded as a [[bind]] \
            entry in config.toml; the nearest bound directory above the working directory wins.",
        after_help = "Examples:\n  wbl bind work ~/work\n  wbl bind personal\n  wbl unbind ~/work"
    )]
    Bind(BindArgs),
    /// Remove the bindings of a directory (default: the current one).
    #[command(after_help = "Example:\n  wbl unbind ~/work")]
    Unbind(UnbindArgs),
    /// Make account NAME the host's default (used where no binding or WBL_ACCOUNT chooses).
    #[command(
        after_help = "Examples:\n  wbl switch work\n  wbl switch alice --host https://wandb.example.com"
    )]
    Switch(SwitchArgs),
    /// Show the agent, its backend, and for each W&B host where its key comes from.
    #[command(after_help = "Example:\n  wbl status --json | jq '.hosts[] | {url, source}'")]
    Status(StatusArgs),
}

/// The options of `wbl login`. No `Debug`: `key` may hold the API key.
#[derive(Args)]
pub struct LoginArgs {
    /// The API key, or `-` to read it from stdin. Arguments are visible to other
    /// processes: prefer the prompt or `-`. Implies --relogin.
    #[arg(value_name = "KEY")]
    pub key: Vec<String>,
    /// Log in to the W&B public cloud (https://api.wandb.ai).
    #[arg(long)]
    pub cloud: bool,
    /// A W&B server URL (default: WANDB_BASE_URL, else base_url in the settings, else the
    /// cloud); recorded as base_url in the global settings file.
    #[arg(long, visible_alias = "base-url", value_name = "URL")]
    pub host: Option<String>,
    /// Ignore stored keys and prompt for a new one.
    #[arg(long)]
    pub relogin: bool,
    /// Check the key with the server before storing it.
    #[arg(long, overrides_with = "no_verify")]
    pub verify: bool,
    /// Store the key without asking the server (the default).
    #[arg(long, overrides_with = "verify")]
    pub no_verify: bool,
    /// No effect (kept for compatibility with `wandb login`).
    #[arg(long, hide = true)]
    pub anonymously: bool,
    /// Store the key as this account of the host (default: the W&B user name of a verified
    /// key, else `default`).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
}

/// The options of `wbl token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The W&B server (default: WANDB_BASE_URL, else base_url in the settings, else the cloud).
    #[arg(long, visible_alias = "base-url", value_name = "URL")]
    pub host: Option<String>,
    /// The account to use (see `wbl accounts`; default: WBL_ACCOUNT, the directory's binding,
    /// the host's default, its only account).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
}

/// The options of `wbl exec`.
#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The W&B server whose key to use; also exported as WANDB_BASE_URL when it is not
    /// the default.
    #[arg(long, visible_alias = "base-url", value_name = "URL")]
    pub host: Option<String>,
    /// The account to use (see `wbl accounts`; default: WBL_ACCOUNT, the directory's binding,
    /// the host's default, its only account).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Never hand the key to the command: it gets a placeholder key and a local proxy address
    /// (WANDB_BASE_URL) where the agent puts the real key into its requests (docs/proxy.md).
    #[arg(long)]
    pub proxy: bool,
    /// The command and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<std::ffi::OsString>,
}

/// The options of `wbl logout`.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// The W&B server (default: WANDB_BASE_URL, else base_url in the settings, else the cloud).
    #[arg(
        long,
        visible_alias = "base-url",
        value_name = "URL",
        conflicts_with = "all"
    )]
    pub host: Option<String>,
    /// Remove every W&B key wbl stores, for every host (git credentials stay unless --git).
    #[arg(long)]
    pub all: bool,
    /// With --all: also remove the git credentials wbl stores for git (`wbl credential`).
    #[arg(long, requires = "all")]
    pub git: bool,
    /// Remove only this account's key (see `wbl accounts`).
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub account: Option<String>,
}

/// The options of `wbl credential` (also built by the client's fast path, which skips clap).
#[derive(Args, Debug)]
pub struct CredentialArgs {
    /// get, store or erase (other operations are ignored, as git asks of helpers).
    pub operation: String,
}

/// The options of `wbl setup-git`.
#[derive(Args, Debug)]
pub struct SetupGitArgs {
    /// The URL git should ask wbl about (default: WANDB_BASE_URL or https://api.wandb.ai).
    #[arg(long, visible_alias = "base-url")]
    pub host: Option<String>,
    /// Edit your global git config (~/.gitconfig); the default.
    #[arg(long, conflicts_with = "local")]
    pub global: bool,
    /// Edit the current repository's git config instead.
    #[arg(long)]
    pub local: bool,
    /// Remove wbl's helper entry instead of adding it.
    #[arg(long)]
    pub remove: bool,
}

/// The options of `wbl migrate`.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// A W&B host whose key to move (repeatable; both addresses of a Forge-served
    /// deployment are included; default: the cloud, the SDK's Forge default,
    /// WANDB_BASE_URL and the base_url of the W&B settings files).
    #[arg(long = "host", visible_alias = "base-url", value_name = "URL")]
    pub hosts: Vec<String>,
    /// Import into the keychain but leave the plaintext copies where they are.
    #[arg(long)]
    pub keep: bool,
    /// Only print what would be moved.
    #[arg(long)]
    pub dry_run: bool,
    /// Also move the credentials of git's `store` helper (~/.git-credentials).
    #[arg(long)]
    pub git_credentials: bool,
    /// Also move registry logins kept in plaintext (`auths`) in ~/.docker/config.json and
    /// podman's auth.json, and name wbl those registries' credential helper (`credHelpers`).
    #[arg(long)]
    pub docker: bool,
    /// Also move W&B keys that cannot be the host's key: earlier netrc entries the SDK
    /// does not read (the same machine again, another key) and keys other than the one
    /// the keychain holds; they are stored as user `api-old-lineN` (`api-old-settings`), then
    /// removed from the file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Start the agent with your login session (systemd socket activation on Linux, a
    /// LaunchAgent on macOS).
    #[command(
        after_help = "Example:\n  wbl agent install --now   # write ~/.config/systemd/user/wbl-agent.{socket,service}, enable and start"
    )]
    Install {
        /// Also enable and start it now (Linux: `systemctl --user enable --now
        /// wbl-agent.socket`; macOS always loads it).
        #[arg(long)]
        now: bool,
    },
    /// Remove what `wbl agent install` set up (disabling and stopping it first).
    #[command(after_help = "Example:\n  wbl agent uninstall")]
    Uninstall,
    /// Start the agent unless it runs already.
    #[command(after_help = "Example:\n  wbl agent start")]
    Start,
    /// Stop the agent gracefully: it finishes the requests in flight, then exits.
    #[command(after_help = "Example:\n  wbl agent stop")]
    Stop,
    /// Show whether the agent runs: pid, version, socket, uptime (exit 1 when it does not).
    #[command(after_help = "Example:\n  wbl agent status --json | jq .pid")]
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// The options of `wbl agent`.
#[derive(Args, Debug)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: AgentCommand,
}

/// The options of `wbl keyring`.
#[derive(Args, Debug)]
pub struct KeyringArgs {
    #[command(subcommand)]
    pub command: KeyringCommand,
}

/// `wbl keyring` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeyringCommand {
    /// Unlock the default keyring with its password; start the Secret Service through D-Bus
    /// if none runs, and create the keyring (as "Login", with the password typed twice) where
    /// there is none.
    #[command(
        long_about = "Make the Secret Service ready to keep keys, from whatever state it is in \
            (the fix `wbl doctor` prints for it):\n  \
            - not running: D-Bus starts it (gnome-keyring's D-Bus service);\n  \
            - its default keyring is locked: unlocks it with the password you type;\n  \
            - it has no default keyring (a fresh gnome-keyring started without a login \
            password): creates one, labelled \"Login\", with the password you type twice, and \
            makes it the default;\n  \
            - already unlocked: says so.\n\n\
            The password is read without echo from the terminal, or as one line from stdin \
            when that is not a terminal. It goes to gnome-keyring over your session bus (as \
            `gnome-keyring-daemon --unlock` reads it from a pipe), never onto a command line. \
            Other providers (KeePassXC, KWallet) take no password from wbl: unlock them in \
            their own window. Exit status 1 when the keyring is not unlocked at the end.",
        after_help = "Examples:\n  \
            wbl keyring unlock\n  \
            pass show login | wbl keyring unlock"
    )]
    Unlock,
}

/// The options of `wbl openbao`.
#[derive(Args, Debug)]
pub struct OpenBaoArgs {
    #[command(subcommand)]
    pub command: OpenBaoCommand,
}

/// `wbl openbao` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum OpenBaoCommand {
    /// Log the agent in to an OpenBao server of config.toml (token, password or the job's JWT).
    #[command(after_help = "Examples:\n  \
        wbl openbao login team                          # prompts for the token or password\n  \
        pass show bao/alice | wbl openbao login team    # reads it from stdin\n  \
        wbl openbao login jobs                          # auth = \"jwt\": uses jwt_file")]
    Login {
        /// The server's name: the NAME of an `[openbao.NAME]` section of config.toml.
        name: String,
    },
}

/// The options of `wbl doctor`.
#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Machine-readable output: healthy, problems, warnings, wbl_version and checks, each
    /// with name, title, verdict (ok|warning|problem|skipped), ms, detail and fix.
    #[arg(long)]
    pub json: bool,
}

/// The options of `wbl log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// One JSON object per line: time (RFC 3339), op, result, code, protocol, host,
    /// username, uid, pid, exe, parents ([{pid, exe}]), check, channel; `dropped` on gaps.
    #[arg(long)]
    pub json: bool,
    /// Only entries newer than this: a duration (30m, 2h, 7days) or an RFC 3339 time.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::since)]
    pub since: Option<std::time::SystemTime>,
    /// Only entries for this host (api.wandb.ai, git.example.com:8443, or a URL).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Keep printing entries as they are written, until interrupted. Starts at the end of
    /// the log, as `tail -f` does: `-n N` shows the last N entries first.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only the last N entries (after --since and --host); with --follow, the N to start with.
    #[arg(long = "lines", short = 'n', value_name = "N")]
    pub lines: Option<usize>,
}

/// The options of `wbl completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The options of `wbl man`.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The directory to write the pages to (created if needed).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: std::path::PathBuf,
}

/// The options of `wbl status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Every host's accounts, defaults and bindings (as `wbl accounts`).
    #[arg(long)]
    pub all: bool,
}

/// `wbl ssh`'s options (see `cmd::ssh`).
#[derive(Args, Debug)]
pub struct SshArgs {
    /// Also grant this host (a URL, or a host name meaning https://HOST); repeatable. The
    /// current W&B host is always granted.
    #[arg(long = "allow", value_name = "HOST")]
    pub allow: Vec<String>,
    /// End the grant after this long even if the session goes on: 90s, 30m, 8h, 2d, 1h30m.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::forward_ttl)]
    pub ttl: Option<std::time::Duration>,
    /// The directory on the remote machine in which the forwarded socket's private (0700)
    /// directory is made (default /tmp): yours, or sticky like /tmp, so that nobody can
    /// replace what is made there.
    #[arg(long, value_name = "DIR", conflicts_with = "hold")]
    pub remote_dir: Option<std::path::PathBuf>,
    /// Run no ssh: keep a forward named NAME open (at `<agent socket>.fwd-NAME`) until
    /// Ctrl-C or --ttl, for a `RemoteForward` in ~/.ssh/config (plain ssh, VS Code and the like).
    #[arg(long, value_name = "NAME")]
    pub hold: Option<String>,
    /// Hand out this account's key for the W&B host (default: the account chosen here, in
    /// this directory; see `wbl accounts`).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Hand out no key: the remote gets a placeholder key and a forwarded port of a proxy in
    /// the agent that puts the real key into its W&B requests (docs/proxy.md). Nothing needs
    /// to be installed on the remote.
    #[arg(long)]
    pub proxy: bool,
    /// With --proxy: the loopback port on the remote that ssh forwards to the proxy (default:
    /// a random one for a session, 48080 for --hold).
    #[arg(long, value_name = "PORT", requires = "proxy")]
    pub proxy_port: Option<u16>,
    /// ssh's own arguments: options, the destination, and a remote command (after `--`).
    #[arg(
        required_unless_present = "hold",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "SSH_ARGS"
    )]
    pub ssh_args: Vec<std::ffi::OsString>,
}

/// The options of `wbl accounts`.
#[derive(Args, Debug)]
pub struct AccountsArgs {
    /// Only the account names, one a line, for the current W&B host (or --host).
    #[arg(long)]
    pub names: bool,
    /// With --names: the W&B server.
    #[arg(
        long,
        visible_alias = "base-url",
        value_name = "URL",
        requires = "names"
    )]
    pub host: Option<String>,
}

/// The options of `wbl bind`.
#[derive(Args, Debug)]
pub struct BindArgs {
    /// The account (see `wbl accounts`).
    #[arg(value_name = "NAME")]
    pub account: String,
    /// The directory (default: the current one).
    #[arg(value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Option<std::path::PathBuf>,
    /// The W&B server (default: the one the SDK uses in DIR).
    #[arg(long, visible_alias = "base-url", value_name = "URL")]
    pub host: Option<String>,
}

/// The options of `wbl unbind`.
#[derive(Args, Debug)]
pub struct UnbindArgs {
    /// The directory (default: the current one).
    #[arg(value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub dir: Option<std::path::PathBuf>,
    /// Only the binding for this W&B server (default: every host's).
    #[arg(long, visible_alias = "base-url", value_name = "URL")]
    pub host: Option<String>,
}

/// The options of `wbl switch`.
#[derive(Args, Debug)]
pub struct SwitchArgs {
    /// The account (see `wbl accounts`).
    #[arg(value_name = "NAME")]
    pub account: String,
    /// The W&B server (default: WANDB_BASE_URL, else base_url in the settings, else the cloud).
    #[arg(long, visible_alias = "base-url", value_name = "URL")]
    pub host: Option<String>,
}

/// The options of `wbl scan`.
#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files and directories to search (default: your home directory and the current one).
    #[arg(value_name = "PATH")]
    pub paths: Vec<std::path::PathBuf>,
    /// Every credential the agent can read, not only W&B keys: git, docker, routed hosts.
    #[arg(long)]
    pub all: bool,
    /// Also search files that look binary (a NUL byte in their first 256 KiB).
    #[arg(long)]
    pub binary: bool,
    /// Enter other file systems mounted below the paths.
    #[arg(long)]
    pub cross_filesystems: bool,
    /// One JSON object per copy: path, line, column, form, url, also, username, field,
    /// last4, action (migrate|remove), advice.
    #[arg(long)]
    pub json: bool,
    /// List the files that could not be read and the mount points not entered.
    #[arg(long, short)]
    pub verbose: bool,
}
