//! Two kinds of tests: a scripted fake upstream and a raw client, to see exactly what
//! crosses the proxy in each direction; and the real tools (qemu-nbd upstream, nbdinfo,
//! qemu-io and nbdcopy as clients), to see that real clients work through it.

use super::*;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A temporary folder with a short path: unix socket paths must fit in 108 bytes.
fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("vbp").tempdir_in("/tmp").unwrap()
}

// ---------------------------------------------------------------------------------------
// Raw protocol helpers.

const CMD_READ: u16 = 0;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
const OPT_STRUCTURED_REPLY: u32 = 8;
const REP_META_CONTEXT: u32 = 4;
const REP_ERR_UNSUP: u32 = REP_ERR_BIT | 1;
const FLAG_NO_ZEROES: u16 = 1 << 1;
const INFO_EXPORT: u16 = 0;

fn name_data(name: &str, tail: &[u8]) -> Vec<u8> {
    let mut data = (name.len() as u32).to_be_bytes().to_vec();
    data.extend_from_slice(name.as_bytes());
    data.extend_from_slice(tail);
    data
}

/// GO/INFO data: the name, then a list of information requests.
fn go_data(name: &str, infos: &[u16]) -> Vec<u8> {
    let mut tail = (infos.len() as u16).to_be_bytes().to_vec();
    for info in infos {
        tail.extend_from_slice(&info.to_be_bytes());
    }
    name_data(name, &tail)
}

/// META_CONTEXT data: the name, then the queries.
fn meta_data(name: &str, queries: &[&str]) -> Vec<u8> {
    let mut tail = (queries.len() as u32).to_be_bytes().to_vec();
    for query in queries {
        tail.extend_from_slice(&(query.len() as u32).to_be_bytes());
        tail.extend_from_slice(query.as_bytes());
    }
    name_data(name, &tail)
}

/// A client that speaks the handshake byte by byte.
struct RawClient {
    s: UnixStream,
}

impl RawClient {
    fn connect(path: &Path) -> RawClient {
        let s = UnixStream::connect(path).unwrap();
        // A proxy that hangs fails the test instead of hanging it.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RawClient { s }
    }

    /// Reads the greeting and answers with `flags`; returns the server's flags.
    fn greet(&mut self, flags: u32) -> u16 {
        let mut greeting = [0u8; 18];
        self.s.read_exact(&mut greeting).unwrap();
        assert_eq!(be64(&greeting), NBDMAGIC);
        assert_eq!(be64(&greeting[8..]), IHAVEOPT);
        self.s.write_all(&flags.to_be_bytes()).unwrap();
        be16(&greeting[16..])
    }

    fn handshake(&mut self) {
        let flags = self.greet(1 | 2);
        assert_eq!(flags & (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES), FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    }

    fn option(&mut self, option: u32, data: &[u8]) {
        let mut msg = IHAVEOPT.to_be_bytes().to_vec();
        msg.extend_from_slice(&option.to_be_bytes());
        msg.extend_from_slice(&(data.len() as u32).to_be_bytes());
        msg.extend_from_slice(data);
        self.s.write_all(&msg).unwrap();
    }

    /// One option reply: (type, data); checks that it answers `option`.
    fn reply(&mut self, option: u32) -> (u32, Vec<u8>) {
        let mut header = [0u8; 20];
        self.s.read_exact(&mut header).unwrap();
        assert_eq!(be64(&header), REPLY_MAGIC);
        assert_eq!(be32(&header[8..]), option);
        let mut data = vec![0u8; be32(&header[16..]) as usize];
        self.s.read_exact(&mut data).unwrap();
        (be32(&header[12..]), data)
    }

    /// Replies up to and including the final one.
    fn replies(&mut self, option: u32) -> Vec<(u32, Vec<u8>)> {
        let mut all = Vec::new();
        loop {
            let reply = self.reply(option);
            let last = reply.0 == REP_ACK || reply.0 & REP_ERR_BIT != 0;
            all.push(reply);
            if last {
                return all;
            }
        }
    }

    /// True if the other side has closed the connection (rather than gone silent).
    fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.s.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => false,
            Err(_) => true,
        }
    }

    /// Sends an NBD_CMD_READ and reads its simple reply: (error, data).
    fn read_block(&mut self, handle: u64, offset: u64, len: u32) -> io::Result<(u32, Vec<u8>)> {
        let mut req = REQUEST_MAGIC.to_be_bytes().to_vec();
        req.extend_from_slice(&0u16.to_be_bytes());
        req.extend_from_slice(&CMD_READ.to_be_bytes());
        req.extend_from_slice(&handle.to_be_bytes());
        req.extend_from_slice(&offset.to_be_bytes());
        req.extend_from_slice(&len.to_be_bytes());
        self.s.write_all(&req)?;
        let mut header = [0u8; 16];
        self.s.read_exact(&mut header)?;
        assert_eq!(be32(&header), SIMPLE_REPLY_MAGIC);
        assert_eq!(be64(&header[8..]), handle);
        let error = be32(&header[4..]);
        let mut data = vec![0u8; if error == 0 { len as usize } else { 0 }];
        self.s.read_exact(&mut data)?;
        Ok((error, data))
    }
}

// ---------------------------------------------------------------------------------------
// A fake upstream: a fixed newstyle server with one export, "internal", that records the
// options it receives and, in the transmission phase, echoes what it gets.

#[derive(Default)]
struct FakeState {
    options: Vec<(u32, Vec<u8>)>,
    conns: Vec<UnixStream>,
}

struct FakeUpstream {
    path: PathBuf,
    state: Arc<Mutex<FakeState>>,
}

impl FakeUpstream {
    fn start(path: PathBuf) -> FakeUpstream {
        let listener = UnixListener::bind(&path).unwrap();
        let state = Arc::new(Mutex::new(FakeState::default()));
        let st = Arc::clone(&state);
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                st.lock().unwrap().conns.push(conn.try_clone().unwrap());
                let st = Arc::clone(&st);
                thread::spawn(move || {
                    let _ = fake_serve(conn, &st);
                });
            }
        });
        FakeUpstream { path, state }
    }

    fn options(&self) -> Vec<(u32, Vec<u8>)> {
        self.state.lock().unwrap().options.clone()
    }

    /// Hangs up on every client, as a server that dies would.
    fn cut_all(&self) {
        for conn in &self.state.lock().unwrap().conns {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn fake_serve(mut s: UnixStream, state: &Mutex<FakeState>) -> io::Result<()> {
    let mut greeting = NBDMAGIC.to_be_bytes().to_vec();
    greeting.extend_from_slice(&IHAVEOPT.to_be_bytes());
    greeting.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    s.write_all(&greeting)?;
    let mut flags = [0u8; 4];
    s.read_exact(&mut flags)?;
    let no_zeroes = be32(&flags) & 2 != 0;
    let reply = |s: &mut UnixStream, option: u32, kind: u32, data: &[u8]| -> io::Result<()> {
        let mut msg = reply_header(option, kind, data.len() as u32).to_vec();
        msg.extend_from_slice(data);
        s.write_all(&msg)
    };
    loop {
        let mut header = [0u8; 16];
        s.read_exact(&mut header)?;
        let option = be32(&header[8..]);
        let mut data = vec![0u8; be32(&header[12..]) as usize];
        s.read_exact(&mut data)?;
        state.lock().unwrap().options.push((option, data.clone()));
        let named_internal = data.len() >= 4 && data.get(4..4 + be32(&data) as usize) == Some(&b"internal"[..]);
        match option {
            OPT_EXPORT_NAME if data == b"internal" => {
                let mut answer = (1u64 << 20).to_be_bytes().to_vec();
                answer.extend_from_slice(&1u16.to_be_bytes());
                if !no_zeroes {
                    answer.extend_from_slice(&[0u8; 124]);
                }
                s.write_all(&answer)?;
                break;
            }
            OPT_EXPORT_NAME => return Ok(()),
            OPT_ABORT => {
                reply(&mut s, option, REP_ACK, &[])?;
                return Ok(());
            }
            OPT_GO | OPT_INFO if named_internal => {
                let mut name = INFO_NAME.to_be_bytes().to_vec();
                name.extend_from_slice(b"internal");
                reply(&mut s, option, REP_INFO, &name)?;
                let mut export = INFO_EXPORT.to_be_bytes().to_vec();
                export.extend_from_slice(&(1u64 << 20).to_be_bytes());
                export.extend_from_slice(&1u16.to_be_bytes());
                reply(&mut s, option, REP_INFO, &export)?;
                reply(&mut s, option, REP_ACK, &[])?;
                if option == OPT_GO {
                    break;
                }
            }
            OPT_LIST_META_CONTEXT | OPT_SET_META_CONTEXT if named_internal => {
                let mut context = 7u32.to_be_bytes().to_vec();
                context.extend_from_slice(b"base:allocation");
                reply(&mut s, option, REP_META_CONTEXT, &context)?;
                reply(&mut s, option, REP_ACK, &[])?;
            }
            OPT_LIST => {
                // What a real server would leak if the proxy forwarded the option.
                reply(&mut s, option, REP_SERVER, &name_data("internal", b""))?;
                reply(&mut s, option, REP_SERVER, &name_data("secret", b""))?;
                reply(&mut s, option, REP_ACK, &[])?;
            }
            OPT_GO | OPT_INFO | OPT_LIST_META_CONTEXT | OPT_SET_META_CONTEXT => {
                reply(&mut s, option, REP_ERR_UNKNOWN, b"no such export")?
            }
            _ => reply(&mut s, option, REP_ERR_UNSUP, b"")?,
        }
    }
    // Transmission: echo.
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n])?;
    }
}

/// A fake upstream and a proxy mapping "vda" to its "internal" export and "vdb" to an
/// export it does not have.
struct FakeSetup {
    // Fields drop in order: the proxy before the folder holding its socket.
    proxy: Option<NbdProxy>,
    upstream: FakeUpstream,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl FakeSetup {
    fn new() -> FakeSetup {
        let dir = tmpdir();
        let upstream = FakeUpstream::start(dir.path().join("up.sock"));
        let socket = dir.path().join("px.sock");
        let proxy = NbdProxy::start(
            Listen::Unix(socket.clone()),
            upstream.path.clone(),
            vec![("vda".into(), "internal".into()), ("vdb".into(), "missing".into())],
        )
        .unwrap();
        FakeSetup { proxy: Some(proxy), upstream, socket, _dir: dir }
    }

    fn client(&self) -> RawClient {
        let mut client = RawClient::connect(&self.socket);
        client.handshake();
        client
    }

    /// The options upstream received, from all clients, in order.
    fn upstream_options(&self) -> Vec<(u32, Vec<u8>)> {
        self.upstream.options()
    }
}

#[test]
fn list_is_answered_with_the_visible_names_only() {
    let setup = FakeSetup::new();
    let mut client = setup.client();
    client.option(OPT_LIST, &[]);
    let replies = client.replies(OPT_LIST);
    assert_eq!(
        replies,
        vec![(REP_SERVER, name_data("vda", b"")), (REP_SERVER, name_data("vdb", b"")), (REP_ACK, vec![])]
    );
    // With data, the option is malformed; the connection goes on.
    client.option(OPT_LIST, b"x");
    assert_eq!(client.reply(OPT_LIST).0, REP_ERR_INVALID);
    client.option(OPT_LIST, &[]);
    assert_eq!(client.replies(OPT_LIST).len(), 3);
    assert!(setup.upstream_options().iter().all(|(o, _)| *o != OPT_LIST));
}

#[test]
fn go_is_renamed_and_the_canonical_name_is_the_visible_one() {
    let setup = FakeSetup::new();
    let mut client = setup.client();
    client.option(OPT_GO, &go_data("vda", &[INFO_NAME, 3]));
    let replies = client.replies(OPT_GO);
    let mut name = INFO_NAME.to_be_bytes().to_vec();
    name.extend_from_slice(b"vda");
    assert_eq!(replies[0], (REP_INFO, name));
    assert_eq!(replies[1].0, REP_INFO);
    assert_eq!(be16(&replies[1].1), INFO_EXPORT);
    assert_eq!(replies[2], (REP_ACK, vec![]));
    // Upstream got the internal name, with the information requests kept.
    assert_eq!(setup.upstream_options(), vec![(OPT_GO, go_data("internal", &[INFO_NAME, 3]))]);
    // Transmission: bytes cross unchanged (the fake upstream echoes them).
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    client.s.write_all(&payload).unwrap();
    let mut back = vec![0u8; payload.len()];
    client.s.read_exact(&mut back).unwrap();
    assert_eq!(back, payload);
}

#[test]
fn info_and_meta_context_options_are_renamed() {
    let setup = FakeSetup::new();
    let mut client = setup.client();
    client.option(OPT_STRUCTURED_REPLY, &[]);
    // The fake upstream does not know the option: its refusal comes back unchanged.
    assert_eq!(client.reply(OPT_STRUCTURED_REPLY), (REP_ERR_UNSUP, vec![]));
    client.option(OPT_SET_META_CONTEXT, &meta_data("vda", &["base:allocation", "qemu:dirty-bitmap:b0"]));
    let replies = client.replies(OPT_SET_META_CONTEXT);
    let mut context = 7u32.to_be_bytes().to_vec();
    context.extend_from_slice(b"base:allocation");
    assert_eq!(replies, vec![(REP_META_CONTEXT, context), (REP_ACK, vec![])]);
    client.option(OPT_LIST_META_CONTEXT, &meta_data("vda", &[]));
    assert_eq!(client.replies(OPT_LIST_META_CONTEXT).len(), 2);
    client.option(OPT_INFO, &go_data("vda", &[]));
    assert_eq!(client.replies(OPT_INFO).last().unwrap().0, REP_ACK);
    // After INFO the handshake goes on; a mapped name upstream lacks is refused upstream.
    client.option(OPT_GO, &go_data("vdb", &[]));
    assert_eq!(client.reply(OPT_GO).0, REP_ERR_UNKNOWN);
    assert_eq!(
        setup.upstream_options(),
        vec![
            (OPT_STRUCTURED_REPLY, vec![]),
            (OPT_SET_META_CONTEXT, meta_data("internal", &["base:allocation", "qemu:dirty-bitmap:b0"])),
            (OPT_LIST_META_CONTEXT, meta_data("internal", &[])),
            (OPT_INFO, go_data("internal", &[])),
            (OPT_GO, go_data("missing", &[])),
        ]
    );
}

#[test]
fn unmapped_names_are_refused_without_reaching_upstream() {
    let setup = FakeSetup::new();
    let mut client = setup.client();
    for name in ["internal", "nope", "", "VDA", "vda\0"] {
        for option in [OPT_GO, OPT_INFO] {
            client.option(option, &go_data(name, &[]));
            let (kind, message) = client.reply(option);
            assert_eq!(kind, REP_ERR_UNKNOWN, "{name:?}");
            assert!(String::from_utf8(message).unwrap().contains("not available"));
        }
        for option in [OPT_SET_META_CONTEXT, OPT_LIST_META_CONTEXT] {
            client.option(option, &meta_data(name, &["base:allocation"]));
            assert_eq!(client.reply(option).0, REP_ERR_UNKNOWN, "{name:?}");
        }
    }
    assert_eq!(setup.upstream_options(), vec![]);
    // The connection is still usable.
    client.option(OPT_GO, &go_data("vda", &[]));
    assert_eq!(client.replies(OPT_GO).last().unwrap().0, REP_ACK);
}

#[test]
fn export_name_is_renamed_and_an_unmapped_one_hangs_up() {
    let setup = FakeSetup::new();
    let mut client = setup.client();
    client.option(OPT_EXPORT_NAME, b"internal");
    assert!(client.closed());
    let mut client = setup.client();
    client.option(OPT_EXPORT_NAME, b"nope");
    assert!(client.closed());
    assert_eq!(setup.upstream_options(), vec![]);

    // A client that did not ask for NO_ZEROES gets the padding, relayed raw.
    let mut client = RawClient::connect(&setup.socket);
    client.greet(1);
    client.option(OPT_EXPORT_NAME, b"vda");
    let mut answer = [0u8; 8 + 2 + 124];
    client.s.read_exact(&mut answer).unwrap();
    assert_eq!(be64(&answer), 1 << 20);
    client.s.write_all(b"ping").unwrap();
    let mut echo = [0u8; 4];
    client.s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping");
    assert_eq!(setup.upstream_options(), vec![(OPT_EXPORT_NAME, b"internal".to_vec())]);
}

#[test]
fn starttls_is_refused_and_abort_is_forwarded() {
    let setup = FakeSetup::new();
    let mut client = setup.client();
    client.option(OPT_STARTTLS, &[]);
    assert_eq!(client.reply(OPT_STARTTLS).0, REP_ERR_POLICY);
    client.option(99, b"whatever");
    assert_eq!(client.reply(99), (REP_ERR_UNSUP, vec![]));
    client.option(OPT_ABORT, &[]);
    assert_eq!(client.reply(OPT_ABORT), (REP_ACK, vec![]));
    assert!(client.closed());
    assert_eq!(setup.upstream_options(), vec![(99, b"whatever".to_vec()), (OPT_ABORT, vec![])]);
}

#[test]
fn malformed_input_closes_that_connection_only() {
    let setup = FakeSetup::new();
    let mut bystander = setup.client();

    // Not fixed newstyle.
    let mut client = RawClient::connect(&setup.socket);
    client.greet(0);
    assert!(client.closed());

    // A bad option magic.
    let mut client = setup.client();
    client.s.write_all(&[0xff; 16]).unwrap();
    assert!(client.closed());

    // A name longer than the option data: an error reply, and the connection goes on.
    let mut client = setup.client();
    let mut data = go_data("vda", &[]);
    data[3] = 200;
    client.option(OPT_GO, &data);
    assert_eq!(client.reply(OPT_GO).0, REP_ERR_INVALID);
    client.option(OPT_SET_META_CONTEXT, &[0, 0]);
    assert_eq!(client.reply(OPT_SET_META_CONTEXT).0, REP_ERR_INVALID);

    // Option data too large to accept.
    let mut client = setup.client();
    let mut header = IHAVEOPT.to_be_bytes().to_vec();
    header.extend_from_slice(&OPT_GO.to_be_bytes());
    header.extend_from_slice(&u32::MAX.to_be_bytes());
    client.s.write_all(&header).unwrap();
    assert_eq!(client.reply(OPT_GO).0, REP_ERR_TOO_BIG);
    assert!(client.closed());

    // A client that hangs up in the middle of an option.
    let client = setup.client();
    (&client.s).write_all(&header[..10]).unwrap();
    drop(client);

    assert_eq!(setup.upstream_options(), vec![]);
    bystander.option(OPT_GO, &go_data("vda", &[]));
    assert_eq!(bystander.replies(OPT_GO).last().unwrap().0, REP_ACK);
}

#[test]
fn start_rejects_bad_maps_and_used_paths() {
    let dir = tmpdir();
    let up = dir.path().join("up.sock");
    let twice = vec![("vda".into(), "a".into()), ("vda".into(), "b".into())];
    let err = NbdProxy::start(Listen::Unix(dir.path().join("p1")), up.clone(), twice).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(!dir.path().join("p1").exists());
    let long = vec![("vda".into(), "x".repeat(5000))];
    assert!(NbdProxy::start(Listen::Unix(dir.path().join("p2")), up.clone(), long).is_err());

    // A path in use is not taken over, and the failed start leaves it alone.
    let path = dir.path().join("p3");
    let first = NbdProxy::start(Listen::Unix(path.clone()), up.clone(), vec![]).unwrap();
    let err = NbdProxy::start(Listen::Unix(path.clone()), up.clone(), vec![]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert!(path.exists());
    assert_eq!(first.local_addr(), path.to_str().unwrap());
    first.stop();
    assert!(!path.exists());
}

#[test]
fn stop_closes_relayed_connections_and_the_socket() {
    let mut setup = FakeSetup::new();
    let mut transmitting = setup.client();
    transmitting.option(OPT_GO, &go_data("vda", &[]));
    assert_eq!(transmitting.replies(OPT_GO).last().unwrap().0, REP_ACK);
    let mut negotiating = setup.client();
    // Let the proxy's thread block on the next option.
    thread::sleep(Duration::from_millis(50));

    let started = Instant::now();
    setup.proxy.take().unwrap().stop();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(transmitting.closed());
    assert!(negotiating.closed());
    assert!(!setup.socket.exists());
    assert!(UnixStream::connect(&setup.socket).is_err());
}

#[test]
fn a_socket_replaced_after_start_is_not_removed() {
    let setup = FakeSetup::new();
    std::fs::remove_file(&setup.socket).unwrap();
    std::fs::write(&setup.socket, b"someone else's").unwrap();
    drop(setup.proxy);
    assert!(setup.socket.exists());
}

#[test]
fn stop_does_not_hang_on_an_upstream_that_does_not_accept() {
    // An upstream that never accepts, with its listen backlog full, as a hung daemon's
    // would be: connecting to it blocks.
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim().parse().unwrap();
    let dir = tmpdir();
    let up = dir.path().join("up.sock");
    let hung = UnixListener::bind(&up).unwrap();
    let mut backlog = Vec::new();
    for _ in 0..=somaxconn {
        match UnixStream::connect(&up) {
            Ok(s) => backlog.push(s),
            Err(e) => {
                eprintln!("skipped: cannot fill the listen backlog ({e})");
                return;
            }
        }
    }
    let socket = dir.path().join("px.sock");
    let proxy = NbdProxy::start(Listen::Unix(socket.clone()), up, vec![]).unwrap();
    let mut client = RawClient::connect(&socket);
    thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    proxy.stop();
    let took = started.elapsed();
    assert!(took >= STOP_WAIT - Duration::from_millis(500) && took < STOP_WAIT + Duration::from_secs(2), "{took:?}");
    assert!(!socket.exists());
    // Once upstream makes room, the connect returns and the left-behind thread closes
    // the client.
    let _ = hung.accept().unwrap();
    assert!(client.closed());
}

#[test]
fn an_absent_or_vanishing_upstream_closes_the_client() {
    let dir = tmpdir();
    let socket = dir.path().join("px.sock");
    let proxy = NbdProxy::start(Listen::Unix(socket.clone()), dir.path().join("none"), vec![]).unwrap();
    let mut client = RawClient::connect(&socket);
    assert!(client.closed());
    proxy.stop();

    let setup = FakeSetup::new();
    let mut client = setup.client();
    client.option(OPT_GO, &go_data("vda", &[]));
    assert_eq!(client.replies(OPT_GO).last().unwrap().0, REP_ACK);
    let mut negotiating = setup.client();
    thread::sleep(Duration::from_millis(50));
    setup.upstream.cut_all();
    assert!(client.closed());
    // One in the handshake finds out at its next option.
    negotiating.option(OPT_LIST_META_CONTEXT, &meta_data("vda", &[]));
    assert!(negotiating.closed());
}

// ---------------------------------------------------------------------------------------
// The real tools.

/// Runs a tool under `timeout`, so that a hang shows up as a failure.
fn tool(program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Runs a tool that must succeed; returns its stdout.
fn run(program: &str, args: &[&str]) -> String {
    let out = tool(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a tool that must fail (and not by timing out); returns its stderr.
fn run_fails(program: &str, args: &[&str]) -> String {
    let out = tool(program, args);
    assert!(!out.status.success(), "{program} {args:?} succeeded");
    assert_ne!(out.status.code(), Some(124), "{program} {args:?} timed out");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A qemu-nbd process, killed when dropped (also when the test fails).
struct QemuNbd {
    pid: i32,
    socket: PathBuf,
}

impl QemuNbd {
    fn start(dir: &Path, image: &Path, format: &str, export: &str, bitmap: Option<&str>) -> QemuNbd {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let socket = dir.join(format!("nbd{n}.sock"));
        let pidfile = dir.join(format!("nbd{n}.pid"));
        let mut args = vec![
            "--read-only".to_string(),
            format!("--format={format}"),
            "-x".to_string(),
            export.to_string(),
            format!("--socket={}", socket.display()),
            "--fork".to_string(),
            format!("--pid-file={}", pidfile.display()),
            "--shared=16".to_string(),
            // Without it qemu-nbd exits when its last client leaves.
            "--persistent".to_string(),
        ];
        if let Some(bitmap) = bitmap {
            args.push(format!("--bitmap={bitmap}"));
        }
        args.push(image.to_str().unwrap().to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("qemu-nbd", &args);
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        QemuNbd { pid, socket }
    }

    fn alive(&self) -> bool {
        // The daemonized process is not our child; once it exits, whoever adopted it
        // reaps it, but until then it may linger as a zombie.
        match std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
            Err(_) => false,
        }
    }

    fn kill(&self) {
        let pid = Pid::from_raw(self.pid);
        let _ = kill(pid, Signal::SIGTERM);
        for _ in 0..500 {
            if !self.alive() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = kill(pid, Signal::SIGKILL);
    }
}

impl Drop for QemuNbd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A 64 MiB qcow2 image with data at 0 (before bitmap b0 was added) and at 4M and 10M
/// (recorded in b0), exported by qemu-nbd as "internal-name", and a proxy offering it as
/// "vda".
struct Real {
    // Fields drop in order: proxy, then qemu-nbd, then the folder.
    proxy: Option<NbdProxy>,
    nbd: QemuNbd,
    socket: PathBuf,
    image: PathBuf,
    dir: tempfile::TempDir,
}

impl Real {
    fn new() -> Real {
        let dir = tmpdir();
        let image = dir.path().join("img.qcow2");
        let img = image.to_str().unwrap();
        run("qemu-img", &["create", "-q", "-f", "qcow2", img, "64M"]);
        run("qemu-io", &["-f", "qcow2", "-c", "write -P 0x11 0 1M", img]);
        run("qemu-img", &["bitmap", "--add", img, "b0"]);
        run("qemu-io", &["-f", "qcow2", "-c", "write -P 0x22 4M 1M", "-c", "write -P 0x33 10M 64k", img]);
        let nbd = QemuNbd::start(dir.path(), &image, "qcow2", "internal-name", Some("b0"));
        let socket = dir.path().join("px.sock");
        let proxy = NbdProxy::start(
            Listen::Unix(socket.clone()),
            nbd.socket.clone(),
            vec![("vda".into(), "internal-name".into())],
        )
        .unwrap();
        Real { proxy: Some(proxy), nbd, socket, image, dir }
    }

    fn uri(&self, export: &str) -> String {
        format!("nbd+unix:///{export}?socket={}", self.socket.display())
    }
}

#[test]
fn nbdinfo_lists_only_the_mapped_name() {
    let real = Real::new();
    let out = run("nbdinfo", &["--list", "--json", &format!("nbd+unix://?socket={}", real.socket.display())]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let exports = json["exports"].as_array().unwrap();
    assert_eq!(exports.len(), 1, "{out}");
    assert_eq!(exports[0]["export-name"], "vda");
    assert_eq!(exports[0]["export-size"], 64 << 20);
    let contexts: Vec<&str> = exports[0]["contexts"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(contexts.contains(&"qemu:dirty-bitmap:b0"), "{out}");
    assert!(!out.contains("internal-name"), "{out}");
}

#[test]
fn nbdinfo_maps_the_dirty_bitmap_through_the_proxy() {
    let real = Real::new();
    let out = run("nbdinfo", &["--json", "--map=qemu:dirty-bitmap:b0", &real.uri("vda")]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let dirty: Vec<(u64, u64)> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == 1)
        .map(|e| (e["offset"].as_u64().unwrap(), e["length"].as_u64().unwrap()))
        .collect();
    assert_eq!(dirty, vec![(4 << 20, 1 << 20), (10 << 20, 64 << 10)]);
    // The export's details name the visible export, never the internal one.
    let out = run("nbdinfo", &["--json", &real.uri("vda")]);
    assert!(out.contains("\"export-name\": \"vda\""), "{out}");
    assert!(!out.contains("internal-name"), "{out}");
}

#[test]
fn qemu_io_reads_the_data_through_the_proxy() {
    let real = Real::new();
    let uri = real.uri("vda");
    for (pattern, offset, len) in [(0x11, "0", "1M"), (0x22, "4M", "1M"), (0x33, "10M", "64k"), (0, "20M", "1M")] {
        run("qemu-io", &["-r", "-f", "raw", "-c", &format!("read -P {pattern:#x} {offset} {len}"), &uri]);
    }
    // A wrong pattern is noticed: the data really comes from the image.
    run_fails("qemu-io", &["-r", "-f", "raw", "-c", "read -P 0x22 0 1M", &uri]);
}

#[test]
fn nbdcopy_of_the_whole_export_equals_the_image() {
    let real = Real::new();
    for connections in ["1", "4"] {
        let copy = real.dir.path().join(format!("copy{connections}.raw"));
        let copy = copy.to_str().unwrap();
        run("nbdcopy", &[&format!("--connections={connections}"), &real.uri("vda"), copy]);
        run("qemu-img", &["compare", "-f", "raw", "-F", "qcow2", copy, real.image.to_str().unwrap()]);
    }
}

#[test]
fn unmapped_names_fail_cleanly_with_real_clients() {
    let real = Real::new();
    for name in ["internal-name", "nope", ""] {
        // libnbd reports NBD_REP_ERR_UNKNOWN as ENOENT.
        let err = run_fails("nbdinfo", &[&real.uri(name)]);
        assert!(err.contains("No such file or directory"), "{name}: {err}");
        run_fails("qemu-io", &["-r", "-f", "raw", "-c", "read 0 512", &real.uri(name)]);
    }
}

#[test]
fn concurrent_clients_work() {
    let real = Real::new();
    let uri = real.uri("vda");
    thread::scope(|scope| {
        let mut jobs = Vec::new();
        for i in 0..8 {
            let uri = &uri;
            jobs.push(scope.spawn(move || {
                if i % 2 == 0 {
                    run("qemu-io", &["-r", "-f", "raw", "-c", "read -P 0x22 4M 1M", "-c", "read -P 0x11 0 1M", uri]);
                } else {
                    let out = run("nbdinfo", &["--map=qemu:dirty-bitmap:b0", uri]);
                    assert!(out.contains("dirty"), "{out}");
                }
            }));
        }
        for job in jobs {
            job.join().unwrap();
        }
    });
    // And the proxy is still serving.
    run("nbdinfo", &[&uri]);
}

#[test]
fn after_stop_the_socket_is_gone_and_clients_fail() {
    let mut real = Real::new();
    run("nbdinfo", &[&real.uri("vda")]);
    let mut transmitting = RawClient::connect(&real.socket);
    transmitting.handshake();
    transmitting.option(OPT_GO, &go_data("vda", &[]));
    assert_eq!(transmitting.replies(OPT_GO).last().unwrap().0, REP_ACK);
    let (error, data) = transmitting.read_block(1, 4 << 20, 4096).unwrap();
    assert_eq!((error, data), (0, vec![0x22; 4096]));

    real.proxy.take().unwrap().stop();
    assert!(!real.socket.exists());
    assert!(transmitting.read_block(2, 0, 4096).is_err());
    let err = run_fails("nbdinfo", &[&real.uri("vda")]);
    assert!(err.contains("connect"), "{err}");
}

#[test]
fn upstream_going_away_is_an_error_not_a_hang() {
    let real = Real::new();
    let mut transmitting = RawClient::connect(&real.socket);
    transmitting.handshake();
    transmitting.option(OPT_GO, &go_data("vda", &[]));
    assert_eq!(transmitting.replies(OPT_GO).last().unwrap().0, REP_ACK);
    assert_eq!(transmitting.read_block(1, 0, 512).unwrap(), (0, vec![0x11; 512]));

    real.nbd.kill();
    assert!(transmitting.read_block(2, 0, 512).is_err());
    let started = Instant::now();
    run_fails("nbdinfo", &[&real.uri("vda")]);
    run_fails("qemu-io", &["-r", "-f", "raw", "-c", "read 0 512", &real.uri("vda")]);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn tcp_listener_on_port_zero() {
    let real = Real::new();
    let proxy = NbdProxy::start(
        Listen::Tcp { host: "127.0.0.1".into(), port: 0 },
        real.nbd.socket.clone(),
        vec![("vda".into(), "internal-name".into())],
    )
    .unwrap();
    let addr = proxy.local_addr();
    let port: u16 = addr.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let uri = format!("nbd://{addr}/vda");
    let out = run("nbdinfo", &["--map=qemu:dirty-bitmap:b0", &uri]);
    assert!(out.contains("dirty"), "{out}");
    run("qemu-io", &["-r", "-f", "raw", "-c", "read -P 0x22 4M 1M", &uri]);
    let copy = real.dir.path().join("tcp.raw");
    run("nbdcopy", &[&uri, copy.to_str().unwrap()]);
    run("qemu-img", &["compare", "-f", "raw", "-F", "qcow2", copy.to_str().unwrap(), real.image.to_str().unwrap()]);
    proxy.stop();
    run_fails("nbdinfo", &[&uri]);

    // "[::1]" is accepted as a host (where the machine has IPv6 loopback).
    if let Ok(proxy) = NbdProxy::start(
        Listen::Tcp { host: "[::1]".into(), port: 0 },
        real.nbd.socket.clone(),
        vec![("vda".into(), "internal-name".into())],
    ) {
        assert!(proxy.local_addr().starts_with("[::1]:"));
        run("nbdinfo", &[&format!("nbd://{}/vda", proxy.local_addr())]);
    }
}

/// nbdcopy of a 1 GiB export to null:, straight from qemu-nbd and through the proxy.
/// Run with `cargo test --release --lib engine::nbd_proxy::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let dir = tmpdir();
    let image = dir.path().join("big.raw");
    // Real data everywhere: zeroes or holes would let nbdcopy skip them.
    run("qemu-img", &["create", "-q", "-f", "raw", image.to_str().unwrap(), "1G"]);
    run("qemu-io", &["-f", "raw", "-c", "write -P 0x5a 0 1G", image.to_str().unwrap()]);
    let nbd = QemuNbd::start(dir.path(), &image, "raw", "internal-name", None);
    let socket = dir.path().join("px.sock");
    let proxy =
        NbdProxy::start(Listen::Unix(socket.clone()), nbd.socket.clone(), vec![("vda".into(), "internal-name".into())])
            .unwrap();
    let direct = format!("nbd+unix:///internal-name?socket={}", nbd.socket.display());
    let proxied = format!("nbd+unix:///vda?socket={}", socket.display());
    let runs: usize = std::env::var("NBD_PROXY_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let extra: Vec<String> =
        std::env::var("NBD_PROXY_NBDCOPY_ARGS").unwrap_or_default().split_whitespace().map(String::from).collect();
    for (label, uri) in [("direct", &direct), ("proxy", &proxied), ("direct", &direct), ("proxy", &proxied)] {
        let mut times = Vec::new();
        let cpu_before = cpu_seconds();
        for _ in 0..runs {
            let mut args: Vec<&str> = extra.iter().map(String::as_str).collect();
            args.extend([uri.as_str(), "null:"]);
            let started = Instant::now();
            run("nbdcopy", &args);
            times.push(started.elapsed().as_secs_f64());
        }
        // The proxy's threads are the only busy ones in this process.
        let cpu = (cpu_seconds() - cpu_before) / runs as f64;
        let rates: Vec<String> = times.iter().map(|t| format!("{:.0}", 1024.0 / t)).collect();
        println!("{label:>6}: MiB/s {}   (this process: {cpu:.2} CPU s per GiB)", rates.join(" "));
    }
    drop(proxy);
}

/// User plus system CPU time of this process so far, from /proc (in USER_HZ ticks of
/// 1/100 s on Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}
