//! SSH to a libvirt host: key authentication, a pinned host key, remote
//! commands as argv arrays, file upload (SFTP) and tunnels to sockets on
//! the host (`direct-tcpip`, `direct-streamlocal`).
//!
//! The same [`Conn`] can also be *this* host ([`local`]): an agent on the
//! hypervisor runs the commands itself (argv arrays, no shell) and opens
//! the sockets directly, so a backup is the same code either way.
//!
//! Every remote command goes through [`quote_argv`]: the remote side runs
//! the user's login shell on the string we send, so each argument is
//! single-quoted there and nothing the caller passes (a domain name, a
//! path, a pre command) can be read as shell syntax.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use base64::Engine;

use super::{Error, Host, HostKey, Result};

/// How long connecting to the host may take before it counts as
/// unreachable; a reachable host answers the TCP handshake at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// An authenticated SSH session to a libvirt host.
///
/// One session serves everything a backup or an import does on the host:
/// commands run one after the other on channels of their own, and the
/// NBD tunnel is one more channel. `ssh2` sessions are blocking here.
pub struct Conn {
    link: Link,
    host_key: HostKey,
    addr: String,
}

/// How commands and sockets on the host are reached.
enum Link {
    Ssh(ssh2::Session),
    /// This host: the agent's case.
    Local,
}

/// A byte stream to a socket on the host.
pub enum Stream {
    Ssh(ssh2::Channel),
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Ssh(c) => c.read(buf),
            Stream::Tcp(c) => c.read(buf),
            Stream::Unix(c) => c.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Ssh(c) => c.write(buf),
            Stream::Tcp(c) => c.write(buf),
            Stream::Unix(c) => c.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Ssh(c) => c.flush(),
            Stream::Tcp(c) => c.flush(),
            Stream::Unix(c) => c.flush(),
        }
    }
}

/// This host, as an agent on the hypervisor reaches it: commands run
/// here (as argv arrays, without a shell), sockets are opened directly.
/// Its address is the host name; it has no host key.
pub fn local() -> Conn {
    Conn {
        link: Link::Local,
        host_key: HostKey {
            key_type: String::new(),
            fingerprint: String::new(),
        },
        addr: crate::hostname(),
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("addr", &self.addr)
            .field("host_key", &self.host_key)
            .finish()
    }
}

/// What a remote command printed, after it exited with status 0.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

/// Quote one argument for a POSIX shell: inside single quotes nothing is
/// special but the single quote itself, which is closed, escaped and
/// reopened (`'` → `'\''`).
pub fn quote(arg: &str) -> String {
    let mut s = String::with_capacity(arg.len() + 2);
    s.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    s
}

/// The one way an argv array becomes the command string SSH sends.
pub fn quote_argv<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT` → (host, port); 22 by default.
pub fn split_addr(addr: &str) -> Result<(String, u16)> {
    let bad = || {
        Error::InvalidInput(format!(
            "bad SSH address {addr:?}: expected HOST or HOST:PORT"
        ))
    };
    if let Some(rest) = addr.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
        return match tail.strip_prefix(':') {
            Some(p) => Ok((h.to_string(), p.parse().map_err(|_| bad())?)),
            None if tail.is_empty() => Ok((h.to_string(), 22)),
            None => Err(bad()),
        };
    }
    match addr.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && !h.is_empty() => {
            Ok((h.to_string(), p.parse().map_err(|_| bad())?))
        }
        Some(_) => Ok((addr.to_string(), 22)),
        None if !addr.is_empty() => Ok((addr.to_string(), 22)),
        None => Err(bad()),
    }
}

fn ssh_err(what: &str, addr: &str, e: ssh2::Error) -> Error {
    Error::Ssh(format!("{what} {addr}: {}", e.message()))
}

/// The key type name OpenSSH shows beside a fingerprint.
fn key_type_name(t: ssh2::HostKeyType) -> &'static str {
    use ssh2::HostKeyType as T;
    match t {
        T::Rsa => "ssh-rsa",
        T::Dss => "ssh-dss",
        T::Ecdsa256 => "ecdsa-sha2-nistp256",
        T::Ecdsa384 => "ecdsa-sha2-nistp384",
        T::Ecdsa521 => "ecdsa-sha2-nistp521",
        T::Ed25519 => "ssh-ed25519",
        T::Unknown => "unknown",
    }
}

/// Open the TCP connection, check the host key against the pinned one and
/// authenticate with the private key. The host key is checked *before*
/// the key is offered, so a host that is not the pinned one never sees
/// an authentication attempt.
pub fn connect(host: &Host) -> Result<Conn> {
    let (name, port) = split_addr(&host.addr)?;
    let shown = host.addr.clone();
    let addrs: Vec<_> = (name.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| Error::Unreachable(format!("{shown}: {e}")))?
        .collect();
    let mut last = None;
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let stream = stream.ok_or_else(|| {
        Error::Unreachable(match last {
            Some(e) => format!("{shown}: {e}"),
            None => format!("{shown}: no address"),
        })
    })?;
    let mut session = ssh2::Session::new().map_err(|e| ssh_err("start SSH to", &shown, e))?;
    session.set_tcp_stream(stream);
    session.set_timeout(CONNECT_TIMEOUT.as_millis() as u32);
    session
        .handshake()
        .map_err(|e| ssh_err("SSH handshake with", &shown, e))?;
    let seen = {
        let (_, kind) = session
            .host_key()
            .ok_or_else(|| Error::Ssh(format!("{shown} sent no host key")))?;
        let hash = session
            .host_key_hash(ssh2::HashType::Sha256)
            .ok_or_else(|| Error::Ssh(format!("{shown}: no host key hash")))?;
        HostKey {
            key_type: key_type_name(kind).to_string(),
            fingerprint: format!(
                "SHA256:{}",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(hash)
            ),
        }
    };
    if let Some(pinned) = &host.known_host {
        if pinned.fingerprint != seen.fingerprint {
            return Err(Error::HostKeyChanged {
                addr: shown,
                expected: pinned.fingerprint.clone(),
                got: format!("{} ({})", seen.fingerprint, seen.key_type),
            });
        }
    }
    let pem = std::str::from_utf8(&host.key.private_pem)
        .map_err(|_| Error::InvalidInput("the SSH private key is not text (PEM)".into()))?;
    session
        .userauth_pubkey_memory(&host.user, None, pem, host.key.passphrase.as_deref())
        .map_err(|e| {
            Error::AuthFailed(format!(
                "{}@{shown} refused the key: {}",
                host.user,
                e.message()
            ))
        })?;
    if !session.authenticated() {
        return Err(Error::AuthFailed(format!(
            "{}@{shown} refused the key",
            host.user
        )));
    }
    // Commands such as a backup job's start can take a while; the
    // connect timeout was only for the handshake.
    session.set_timeout(0);
    session.set_keepalive(true, 30);
    Ok(Conn {
        link: Link::Ssh(session),
        host_key: seen,
        addr: shown,
    })
}

impl Conn {
    /// Is this the local host (an agent's connection)?
    pub fn is_local(&self) -> bool {
        matches!(self.link, Link::Local)
    }

    /// The SSH session, for what only SSH does (`what`, e.g. an import's
    /// SFTP upload).
    fn ssh(&self, what: &str) -> Result<&ssh2::Session> {
        match &self.link {
            Link::Ssh(s) => Ok(s),
            Link::Local => Err(Error::Unsupported(format!(
                "{what} on the local host is not built: it goes over SSH"
            ))),
        }
    }

    /// The host key the server showed (for pin-on-first-contact).
    pub fn host_key(&self) -> &HostKey {
        &self.host_key
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Run `argv` on the host with `stdin` fed to it; fail with its exit
    /// status and stderr unless it exits 0.
    pub fn run_with_input<S: AsRef<str>>(&self, argv: &[S], stdin: &[u8]) -> Result<Output> {
        let shown = argv
            .iter()
            .map(|a| a.as_ref())
            .collect::<Vec<_>>()
            .join(" ");
        let session = match &self.link {
            Link::Ssh(s) => s,
            Link::Local => return run_here(argv, stdin, shown),
        };
        let cmd = quote_argv(argv);
        let e =
            |e: ssh2::Error| Error::Ssh(format!("run `{shown}` on {}: {}", self.addr, e.message()));
        let mut ch = session.channel_session().map_err(e)?;
        ch.exec(&cmd).map_err(e)?;
        if !stdin.is_empty() {
            ch.write_all(stdin)
                .map_err(|x| Error::Ssh(format!("run `{shown}` on {}: {x}", self.addr)))?;
        }
        ch.send_eof().map_err(e)?;
        // The command's output is small (XML, lists); stdout is read to
        // its end before stderr. A command that filled its stderr window
        // first would stall, which none of the virsh calls here do.
        let mut out = Vec::new();
        let mut err = Vec::new();
        let io = |x: std::io::Error| Error::Ssh(format!("run `{shown}` on {}: {x}", self.addr));
        ch.read_to_end(&mut out).map_err(io)?;
        ch.stderr().read_to_end(&mut err).map_err(io)?;
        ch.wait_close().map_err(e)?;
        let status = ch.exit_status().map_err(e)?;
        let stdout = String::from_utf8_lossy(&out).into_owned();
        let stderr = String::from_utf8_lossy(&err).trim().to_string();
        if status != 0 {
            return Err(Error::Remote {
                command: shown,
                status,
                stderr,
            });
        }
        Ok(Output { stdout, stderr })
    }

    /// Run `argv` on the host; see [`Conn::run_with_input`].
    pub fn run<S: AsRef<str>>(&self, argv: &[S]) -> Result<Output> {
        self.run_with_input(argv, &[])
    }

    /// Write `data` to a new file `path` on the host (mode 0600), refusing
    /// to replace one that exists.
    pub fn upload(&self, path: &str, data: &[u8]) -> Result<()> {
        if let Link::Local = self.link {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::Ssh(format!("create {path}: {e}")))?;
            return f
                .write_all(data)
                .map_err(|e| Error::Ssh(format!("write {path}: {e}")));
        }
        let mut f = self.create_file(path)?;
        f.write_all(data)
            .map_err(|e| Error::Ssh(format!("write {path} on {}: {e}", self.addr)))?;
        Ok(())
    }

    /// Create `path` on the host for writing with SFTP; it must not exist.
    pub fn create_file(&self, path: &str) -> Result<ssh2::File> {
        let sftp = self
            .ssh("import")?
            .sftp()
            .map_err(|e| ssh_err("start SFTP on", &self.addr, e))?;
        use ssh2::OpenFlags as F;
        sftp.open_mode(
            Path::new(path),
            F::WRITE | F::CREATE | F::EXCLUSIVE,
            0o600,
            ssh2::OpenType::File,
        )
        .map_err(|e| Error::Ssh(format!("create {path} on {}: {}", self.addr, e.message())))
    }

    /// Does `path` exist on the host?
    pub fn exists(&self, path: &str) -> Result<bool> {
        if let Link::Local = self.link {
            return Ok(std::fs::symlink_metadata(path).is_ok());
        }
        let sftp = self
            .ssh("stat")?
            .sftp()
            .map_err(|e| ssh_err("start SFTP on", &self.addr, e))?;
        match sftp.lstat(Path::new(path)) {
            Ok(_) => Ok(true),
            // SSH_FX_NO_SUCH_FILE
            Err(e) if e.code() == ssh2::ErrorCode::SFTP(2) => Ok(false),
            Err(e) => Err(Error::Ssh(format!(
                "stat {path} on {}: {}",
                self.addr,
                e.message()
            ))),
        }
    }

    /// A byte stream to a unix socket on the host, through the SSH
    /// connection (`direct-streamlocal`): the socket is never exposed on
    /// the network.
    pub fn tunnel_unix(&self, socket: &str) -> Result<Stream> {
        if let Link::Local = self.link {
            return UnixStream::connect(socket)
                .map(Stream::Unix)
                .map_err(|e| Error::Ssh(format!("connect to {socket}: {e}")));
        }
        self.ssh("tunnel")?
            .channel_direct_streamlocal(socket, None)
            .map(Stream::Ssh)
            .map_err(|e| {
                Error::Ssh(format!(
                    "open a tunnel to {socket} on {}: {} (does sshd allow stream-local forwarding?)",
                    self.addr,
                    e.message()
                ))
            })
    }

    /// A byte stream to `host:port` as seen from the SSH server
    /// (`direct-tcpip`).
    pub fn tunnel_tcp(&self, host: &str, port: u16) -> Result<Stream> {
        if let Link::Local = self.link {
            return TcpStream::connect((host, port))
                .map(Stream::Tcp)
                .map_err(|e| Error::Ssh(format!("connect to {host}:{port}: {e}")));
        }
        self.ssh("tunnel")?
            .channel_direct_tcpip(host, port, None)
            .map(Stream::Ssh)
            .map_err(|e| {
                Error::Ssh(format!(
                    "open a tunnel to {host}:{port} on {}: {}",
                    self.addr,
                    e.message()
                ))
            })
    }
}

/// Run `argv` here (the local [`Conn`]): no shell, the program found on
/// `PATH`; a failure is [`Error::Remote`] as over SSH.
fn run_here<S: AsRef<str>>(argv: &[S], stdin: &[u8], shown: String) -> Result<Output> {
    use std::process::{Command, Stdio};
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| Error::InvalidInput("an empty command".into()))?;
    let io = |x: std::io::Error| Error::Ssh(format!("run `{shown}`: {x}"));
    let mut child = Command::new(prog.as_ref())
        .args(args.iter().map(|a| a.as_ref()))
        .stdin(if stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io)?;
    if let Some(mut i) = child.stdin.take() {
        // Small inputs (XML); the pipe's buffer holds them.
        i.write_all(stdin).map_err(io)?;
    }
    let out = child.wait_with_output().map_err(io)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        return Err(Error::Remote {
            command: shown,
            status: out.status.code().unwrap_or(-1),
            stderr,
        });
    }
    Ok(Output { stdout, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_every_argument_literal() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(
            quote_argv(&["virsh", "dumpxml", "x; rm -rf /", "$(id)"]),
            "'virsh' 'dumpxml' 'x; rm -rf /' '$(id)'"
        );
    }

    #[test]
    fn quoted_arguments_reach_a_real_shell_unchanged() {
        let args = ["a b", "it's", "$(id)", "`x`", "\\n", "*", "\"q\"", "-e"];
        let cmd = format!("printf '%s\\n' {}", quote_argv(&args));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .expect("sh");
        let text = String::from_utf8(out.stdout).expect("utf8");
        assert_eq!(text.lines().collect::<Vec<_>>(), args);
    }

    #[test]
    fn the_local_host_runs_argv_without_a_shell() {
        let c = local();
        assert!(c.is_local());
        let out = c.run(&["printf", "%s|", "a b", "$(id)"]).expect("printf");
        assert_eq!(out.stdout, "a b|$(id)|");
        match c.run(&["sh", "-c", "echo oops >&2; exit 3"]) {
            Err(Error::Remote { status, stderr, .. }) => {
                assert_eq!((status, stderr.as_str()), (3, "oops"))
            }
            other => panic!("{other:?}"),
        }
        let fed = c.run_with_input(&["cat"], b"xml").expect("cat");
        assert_eq!(fed.stdout, "xml");
        assert!(matches!(
            c.create_file("/tmp/x"),
            Err(Error::Unsupported(_))
        ));
    }

    #[test]
    fn addresses() {
        assert_eq!(split_addr("h").ok(), Some(("h".into(), 22)));
        assert_eq!(split_addr("h:2222").ok(), Some(("h".into(), 2222)));
        assert_eq!(split_addr("[::1]:2222").ok(), Some(("::1".into(), 2222)));
        assert_eq!(split_addr("::1").ok(), Some(("::1".into(), 22)));
        assert!(split_addr("h:x").is_err());
        assert!(split_addr("").is_err());
    }
}
