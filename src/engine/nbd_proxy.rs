//! An NBD proxy that renames exports.
//!
//! A `qemu-storage-daemon` runs a single NBD server. While a domain runs, that server
//! already exports every disk, writable, under the disk's target name (`vda`); a pull-mode
//! backup wants to offer its point-in-time view under that same name, on a socket of the
//! user's choosing. So the daemon exports the backup view under an internal name
//! (`vb-pull-vda`) on its own server, and this proxy listens where the user asked, passes
//! each client to the daemon on a connection of its own, and rewrites the export name the
//! client asks for into the internal one. Clients can reach only the exports in the map.
//!
//! Only the handshake is interpreted, one option at a time (the protocol lets a client
//! send the next option only after the final reply to the previous one, so the proxy never
//! has to look ahead). Once an export is chosen the bytes are copied unchanged both ways,
//! which keeps the data path independent of structured replies, extended headers and
//! whatever else client and server agreed on. Meta context names
//! (`qemu:dirty-bitmap:NAME`, `base:allocation`) are passed through as they are.
//!
//! Sockets are written through std, which sends with `MSG_NOSIGNAL`: a peer that goes away
//! yields `EPIPE` rather than a `SIGPIPE` that would kill a C host program that never
//! ignored the signal.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// Where the proxy listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A unix socket created at this path; the path must not exist yet.
    Unix(PathBuf),
    /// A TCP address; port 0 picks a free port (see [`NbdProxy::local_addr`]).
    Tcp { host: String, port: u16 },
}

// Protocol constants, from the NBD protocol specification.
const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;

const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
const FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_LIST: u32 = 3;
const OPT_STARTTLS: u32 = 5;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const OPT_LIST_META_CONTEXT: u32 = 9;
const OPT_SET_META_CONTEXT: u32 = 10;

const REP_ACK: u32 = 1;
const REP_SERVER: u32 = 2;
const REP_INFO: u32 = 3;
const REP_ERR_BIT: u32 = 1 << 31;
const REP_ERR_POLICY: u32 = REP_ERR_BIT | 2;
const REP_ERR_INVALID: u32 = REP_ERR_BIT | 3;
const REP_ERR_UNKNOWN: u32 = REP_ERR_BIT | 6;
const REP_ERR_TOO_BIG: u32 = REP_ERR_BIT | 9;

const INFO_NAME: u16 = 1;

/// The longest string (export name) the protocol allows.
const MAX_STRING: usize = 4096;
/// The most option data a client may send, and the most a server's `NBD_REP_INFO` may
/// carry. Real options are a few KiB at most (names and meta context queries); the bound
/// only keeps a broken peer from making the proxy allocate without limit.
const MAX_OPTION_DATA: u32 = 1 << 20;
/// How long stopping waits for the threads serving connections to end.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// How long to wait for upstream's answer to `NBD_OPT_ABORT`.
const ABORT_WAIT: Duration = Duration::from_secs(2);
/// Each direction of the transmission phase copies through a buffer this large. A read
/// returns what the socket holds, which on a unix socket is at most the peer's send
/// buffer (about 200 KiB by default), so this takes a whole burst of read replies in one
/// system call; larger buffers (up to 4 MiB) measured no faster.
const RELAY_BUFFER: usize = 256 << 10;

/// A running proxy. Dropping it stops it, as [`NbdProxy::stop`] does.
pub struct NbdProxy {
    local_addr: String,
    /// The socket file we created, with its device and inode, so that stopping removes
    /// it only if it is still ours.
    socket_file: Option<(PathBuf, u64, u64)>,
    shared: Arc<Shared>,
    /// A second descriptor of the listening socket: `shutdown(2)` on it makes the
    /// blocked `accept(2)` of the accepting thread fail, which is how that thread learns
    /// to stop without a dummy connection or a polling timeout.
    breaker: Option<Stream>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for NbdProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NbdProxy").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl NbdProxy {
    /// Listens on `listen` and relays every client to the NBD server at `upstream` (a unix
    /// socket path), renaming exports per `names` (client-visible name, upstream name).
    /// Returns once listening.
    ///
    /// Each client gets its own connection to `upstream`, opened when the client
    /// connects, so an upstream that is not there yet or has gone shows up as a client
    /// whose connection is closed at once.
    pub fn start(listen: Listen, upstream: PathBuf, names: Vec<(String, String)>) -> io::Result<NbdProxy> {
        let names = Names::new(names)?;
        let (listener, local_addr, socket_file) = match listen {
            Listen::Unix(path) => {
                let listener = UnixListener::bind(&path)?;
                // Only the owner may reach the disks through it, whatever the umask.
                let meta = super::daemon::restrict(&path).and_then(|()| std::fs::symlink_metadata(&path)).inspect_err(
                    |_| {
                        let _ = std::fs::remove_file(&path);
                    },
                )?;
                let local = path.to_string_lossy().into_owned();
                (Listener::Unix(listener), local, Some((path, meta.dev(), meta.ino())))
            }
            Listen::Tcp { host, port } => {
                // Accept "[::1]" as well as "::1": both spellings are common in URIs.
                let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&host);
                let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
                let listener = TcpListener::bind(&addrs[..])?;
                let local = listener.local_addr()?.to_string();
                (Listener::Tcp(listener), local, None)
            }
        };
        let mut proxy =
            NbdProxy { local_addr, socket_file, shared: Arc::new(Shared::default()), breaker: None, acceptor: None };
        // From here on, an early return drops `proxy`, which removes the socket file.
        proxy.breaker = Some(listener.breaker()?);
        let shared = Arc::clone(&proxy.shared);
        let config = Arc::new(Config { upstream, names });
        let acceptor = thread::Builder::new()
            .name("nbd-proxy-accept".to_string())
            .spawn(move || accept_loop(listener, shared, config))?;
        proxy.acceptor = Some(acceptor);
        Ok(proxy)
    }

    /// The address actually bound: the socket path, or `host:port` for TCP (with the port
    /// the system chose when asked for port 0).
    pub fn local_addr(&self) -> String {
        self.local_addr.clone()
    }

    /// Stops accepting, closes every relayed connection, waits (at most a few seconds)
    /// for the threads serving them to end, and removes the unix socket file.
    pub fn stop(self) {
        drop(self)
    }

    fn shut_down(&mut self) {
        self.shared.stop();
        if let Some(breaker) = self.breaker.take() {
            let woken = breaker.shutdown(Shutdown::Both).is_ok();
            if let Some(acceptor) = self.acceptor.take() {
                // Cut sockets end every thread at once, save one still connecting to an
                // upstream that does not accept (a hung daemon): that one is left to
                // close its client when the connect returns, rather than hang the
                // caller. Likewise, should the accept never fail, the accepting thread
                // quits at its next connection, which it closes unserved.
                let deadline = Instant::now() + STOP_WAIT;
                while woken && Instant::now() < deadline {
                    if acceptor.is_finished() {
                        let _ = acceptor.join();
                        break;
                    }
                    thread::sleep(Duration::from_millis(1));
                }
            }
        }
        if let Some((path, dev, ino)) = self.socket_file.take() {
            // Someone may have replaced the file since (a new proxy on the same path);
            // theirs stays.
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.dev() == dev && m.ino() == ino) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

impl Drop for NbdProxy {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The export name map, in the order given (the order `NBD_OPT_LIST` answers in).
#[derive(Debug)]
struct Names {
    pairs: Vec<(String, String)>,
}

impl Names {
    fn new(pairs: Vec<(String, String)>) -> io::Result<Names> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        for (i, (visible, internal)) in pairs.iter().enumerate() {
            for name in [visible, internal] {
                if name.len() > MAX_STRING || name.contains('\0') {
                    return Err(invalid(format!("'{name}' is not a valid NBD export name")));
                }
            }
            if pairs[..i].iter().any(|(v, _)| v == visible) {
                return Err(invalid(format!("export name '{visible}' is mapped twice")));
            }
        }
        Ok(Names { pairs })
    }

    /// The upstream name of a client-visible name.
    fn upstream(&self, visible: &[u8]) -> Option<&str> {
        self.pairs.iter().find(|(v, _)| v.as_bytes() == visible).map(|(_, u)| u.as_str())
    }
}

struct Config {
    upstream: PathBuf,
    names: Names,
}

/// An accepted client or the connection to upstream.
#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(timeout),
            Stream::Tcp(s) => s.set_read_timeout(timeout),
        }
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
        }
    }
}

// Implemented on `&Stream` so that the two relay directions can read and write the same
// socket from two threads without duplicating its descriptor.
impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match *self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match *self {
            Stream::Unix(s) => (&*s).write(buf),
            Stream::Tcp(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => l.accept().map(|(s, _)| {
                // NBD requests and replies are small messages that must not wait for
                // Nagle's algorithm to fill a segment.
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
        }
    }

    /// A duplicate of the listening descriptor, typed as a stream only so that std lets
    /// us call `shutdown(2)` on it.
    fn breaker(&self) -> io::Result<Stream> {
        Ok(match self {
            Listener::Unix(l) => Stream::Unix(UnixStream::from(OwnedFd::from(l.try_clone()?))),
            Listener::Tcp(l) => Stream::Tcp(TcpStream::from(OwnedFd::from(l.try_clone()?))),
        })
    }
}

/// What the accepting thread, the connection threads and the proxy handle share: the
/// open sockets of every connection, so that stopping can cut them all.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stopping: bool,
    open: HashMap<u64, Vec<Arc<Stream>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.lock().stopping
    }

    /// Records a socket of connection `id`; false once the proxy is stopping, in which
    /// case the caller must drop the connection. Checking and recording under one lock
    /// means no socket opened during a stop escapes being closed.
    fn track(&self, id: u64, stream: &Arc<Stream>) -> bool {
        let mut state = self.lock();
        if state.stopping {
            return false;
        }
        state.open.entry(id).or_default().push(Arc::clone(stream));
        true
    }

    fn forget(&self, id: u64) {
        self.lock().open.remove(&id);
    }

    /// Marks the proxy stopping and cuts every connection: each thread blocked on one of
    /// these sockets then returns and ends.
    fn stop(&self) {
        let mut state = self.lock();
        state.stopping = true;
        for stream in state.open.values().flatten() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: Listener, shared: Arc<Shared>, config: Arc<Config>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id: u64 = 0;
    loop {
        let accepted = listener.accept();
        if shared.stopping() {
            break;
        }
        match accepted {
            Ok(client) => {
                let id = next_id;
                next_id += 1;
                let (shared, config) = (Arc::clone(&shared), Arc::clone(&config));
                // A failed spawn drops the closure and with it the client: that client
                // is refused, the proxy goes on.
                if let Ok(worker) = thread::Builder::new()
                    .name(format!("nbd-proxy-{id}"))
                    .spawn(move || serve(&shared, id, client, &config))
                {
                    workers.push(worker);
                }
                workers.retain(|w| !w.is_finished());
            }
            // The listener no longer listens (shut down behind our back): nothing more
            // will come.
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::ConnectionAborted => {}
            // Out of descriptors or memory: give the system a moment rather than spin.
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
    drop(listener);
    for worker in workers {
        let _ = worker.join();
    }
}

/// Serves one client from accept to close.
fn serve(shared: &Shared, id: u64, client: Stream, config: &Config) {
    let client = Arc::new(client);
    if !shared.track(id, &client) {
        return;
    }
    if let Ok(upstream) = UnixStream::connect(&config.upstream) {
        let upstream = Arc::new(Stream::Unix(upstream));
        if shared.track(id, &upstream) {
            if let Ok(Next::Relay) = negotiate(&client, &upstream, &config.names) {
                relay(&client, &upstream);
            }
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    shared.forget(id);
}

/// How the handshake ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Copy bytes both ways until either side closes: the transmission phase.
    Relay,
    /// Close both connections.
    Close,
}

fn protocol_error(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Sends an option request, in one write.
fn send_option(mut to: &Stream, option: u32, data: &[u8]) -> io::Result<()> {
    let mut msg = Vec::with_capacity(16 + data.len());
    msg.extend_from_slice(&IHAVEOPT.to_be_bytes());
    msg.extend_from_slice(&option.to_be_bytes());
    msg.extend_from_slice(&(data.len() as u32).to_be_bytes());
    msg.extend_from_slice(data);
    to.write_all(&msg)
}

fn reply_header(option: u32, kind: u32, len: u32) -> [u8; 20] {
    let mut header = [0u8; 20];
    header[..8].copy_from_slice(&REPLY_MAGIC.to_be_bytes());
    header[8..12].copy_from_slice(&option.to_be_bytes());
    header[12..16].copy_from_slice(&kind.to_be_bytes());
    header[16..].copy_from_slice(&len.to_be_bytes());
    header
}

/// Sends an option reply of our own, in one write.
fn send_reply(mut to: &Stream, option: u32, kind: u32, data: &[u8]) -> io::Result<()> {
    let mut msg = reply_header(option, kind, data.len() as u32).to_vec();
    msg.extend_from_slice(data);
    to.write_all(&msg)
}

/// Why an option naming an export is answered by the proxy instead of upstream.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The data does not hold a whole name.
    Invalid,
    /// The name is not in the map.
    Unknown(String),
}

/// Rewrites option data that starts with a 32-bit length and an export name (`GO`,
/// `INFO`, `LIST_META_CONTEXT`, `SET_META_CONTEXT`) to name the upstream export, keeping
/// what follows the name (information requests, meta context queries) as it is.
fn rename_export(data: &[u8], names: &Names) -> Result<Vec<u8>, Refusal> {
    let len = data.get(..4).map(be32).ok_or(Refusal::Invalid)? as usize;
    let name = data.get(4..).and_then(|rest| rest.get(..len)).ok_or(Refusal::Invalid)?;
    let upstream = names.upstream(name).ok_or_else(|| Refusal::Unknown(String::from_utf8_lossy(name).into_owned()))?;
    let mut out = Vec::with_capacity(data.len() + upstream.len());
    out.extend_from_slice(&(upstream.len() as u32).to_be_bytes());
    out.extend_from_slice(upstream.as_bytes());
    out.extend_from_slice(&data[4 + len..]);
    Ok(out)
}

/// The client-visible name an option's data asks for (already checked by
/// [`rename_export`]).
fn requested_name(data: &[u8]) -> &[u8] {
    &data[4..4 + be32(data) as usize]
}

/// Runs the handshake: relays the greeting and flags, then the options one at a time,
/// until an export is chosen or either side gives up.
fn negotiate(client: &Stream, upstream: &Stream, names: &Names) -> io::Result<Next> {
    let (mut c, mut u) = (client, upstream);

    let mut greeting = [0u8; 18];
    u.read_exact(&mut greeting)?;
    if be64(&greeting[..8]) != NBDMAGIC || be64(&greeting[8..16]) != IHAVEOPT {
        return Err(protocol_error("upstream does not speak newstyle NBD"));
    }
    if be16(&greeting[16..]) & FLAG_FIXED_NEWSTYLE == 0 {
        return Err(protocol_error("upstream does not speak fixed newstyle NBD"));
    }
    c.write_all(&greeting)?;
    let mut flags = [0u8; 4];
    c.read_exact(&mut flags)?;
    // A client without fixed newstyle must not get error replies to options, and error
    // replies are how the proxy refuses names.
    if be32(&flags) & FLAG_C_FIXED_NEWSTYLE == 0 {
        return Err(protocol_error("client does not speak fixed newstyle NBD"));
    }
    u.write_all(&flags)?;

    loop {
        let mut header = [0u8; 16];
        c.read_exact(&mut header)?;
        if be64(&header[..8]) != IHAVEOPT {
            return Err(protocol_error("bad option magic from client"));
        }
        let option = be32(&header[8..12]);
        let len = be32(&header[12..16]);
        if len > MAX_OPTION_DATA {
            // Unread data follows, so the option stream cannot be resumed.
            let _ = send_reply(c, option, REP_ERR_TOO_BIG, b"option data too large");
            return Err(protocol_error("option data too large"));
        }
        let mut data = vec![0u8; len as usize];
        c.read_exact(&mut data)?;

        match option {
            OPT_EXPORT_NAME => {
                // No reply can refuse this option: the server's only way to say no is
                // to hang up, so that is what an unmapped name gets.
                let Some(internal) = names.upstream(&data) else {
                    return Ok(Next::Close);
                };
                send_option(u, OPT_EXPORT_NAME, internal.as_bytes())?;
                // The answer (size, flags, maybe zero padding) has no header, and the
                // transmission phase follows it at once.
                return Ok(Next::Relay);
            }
            OPT_ABORT => {
                send_option(u, OPT_ABORT, &data)?;
                // Upstream may acknowledge or just hang up, and the client must hang up
                // either way: pass on an acknowledgement that comes soon, then close
                // without waiting on either side.
                upstream.set_read_timeout(Some(ABORT_WAIT))?;
                let _ = relay_replies(c, u, option, None);
                return Ok(Next::Close);
            }
            OPT_LIST => {
                // Answered here: upstream would list its internal names, including
                // exports this client must not learn of.
                if !data.is_empty() {
                    send_reply(c, option, REP_ERR_INVALID, b"NBD_OPT_LIST takes no data")?;
                    continue;
                }
                for (visible, _) in &names.pairs {
                    let mut entry = Vec::with_capacity(4 + visible.len());
                    entry.extend_from_slice(&(visible.len() as u32).to_be_bytes());
                    entry.extend_from_slice(visible.as_bytes());
                    send_reply(c, option, REP_SERVER, &entry)?;
                }
                send_reply(c, option, REP_ACK, &[])?;
            }
            OPT_STARTTLS => {
                send_reply(c, option, REP_ERR_POLICY, b"TLS is not available through this proxy")?;
            }
            OPT_INFO | OPT_GO | OPT_LIST_META_CONTEXT | OPT_SET_META_CONTEXT => {
                let renamed = match rename_export(&data, names) {
                    Ok(renamed) => renamed,
                    Err(Refusal::Invalid) => {
                        send_reply(c, option, REP_ERR_INVALID, b"option data does not hold an export name")?;
                        continue;
                    }
                    Err(Refusal::Unknown(name)) => {
                        send_reply(c, option, REP_ERR_UNKNOWN, format!("export '{name}' not available").as_bytes())?;
                        continue;
                    }
                };
                send_option(u, option, &renamed)?;
                let final_reply = relay_replies(c, u, option, Some(requested_name(&data)))?;
                if option == OPT_GO && final_reply == REP_ACK {
                    return Ok(Next::Relay);
                }
            }
            // STRUCTURED_REPLY, EXTENDED_HEADERS, and options this proxy does not know:
            // they name no export, so upstream may judge them.
            _ => {
                send_option(u, option, &data)?;
                relay_replies(c, u, option, None)?;
            }
        }
    }
}

/// Relays upstream's replies to `option` until the final one (an ack or an error), and
/// returns the final reply's type. In `NBD_REP_INFO` replies that name the export, the
/// upstream name is replaced by `visible`, the name the client asked for.
fn relay_replies(client: &Stream, upstream: &Stream, option: u32, visible: Option<&[u8]>) -> io::Result<u32> {
    let (mut c, mut u) = (client, upstream);
    loop {
        let mut header = [0u8; 20];
        u.read_exact(&mut header)?;
        if be64(&header[..8]) != REPLY_MAGIC || be32(&header[8..12]) != option {
            return Err(protocol_error("bad option reply from upstream"));
        }
        let kind = be32(&header[12..16]);
        let len = be32(&header[16..20]);
        match visible {
            Some(visible) if kind == REP_INFO && len <= MAX_OPTION_DATA => {
                let mut data = vec![0u8; len as usize];
                u.read_exact(&mut data)?;
                if data.len() >= 2 && be16(&data) == INFO_NAME {
                    data.truncate(2);
                    data.extend_from_slice(visible);
                }
                send_reply(c, option, kind, &data)?;
            }
            _ => {
                c.write_all(&header)?;
                let copied = io::copy(&mut u.take(u64::from(len)), &mut c)?;
                if copied != u64::from(len) {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
        if kind == REP_ACK || kind & REP_ERR_BIT != 0 {
            return Ok(kind);
        }
    }
}

/// Copies both directions until the connection ends.
fn relay(client: &Stream, upstream: &Stream) {
    thread::scope(|scope| {
        let back = thread::Builder::new().name("nbd-proxy-reply".to_string()).spawn_scoped(scope, || {
            // Once upstream stops sending, no reply can ever come: cut the client off
            // rather than leave it waiting.
            let _ = pump(upstream, client);
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        });
        if back.is_err() {
            return;
        }
        match pump(client, upstream) {
            // The client is done sending (it may still expect replies to what it sent):
            // pass the half-close on and let the other direction drain.
            Ok(()) => {
                let _ = upstream.shutdown(Shutdown::Write);
            }
            Err(_) => {
                let _ = client.shutdown(Shutdown::Both);
                let _ = upstream.shutdown(Shutdown::Both);
            }
        }
    });
}

/// Copies `from` to `to` until end of file.
fn pump(mut from: &Stream, mut to: &Stream) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUFFER];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}
