//! A QMP client: JSON commands and replies over a unix socket, with asynchronous events
//! kept aside and every wait bounded by a deadline.
//!
//! A daemon that dies shows up as end-of-file, one that stops answering as a timeout;
//! either way the call returns an error and the connection is not used again.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

/// Why a QMP exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QmpError {
    /// QEMU answered with an error.
    Command { command: String, class: String, desc: String },
    /// The socket could not be reached.
    Connect(String),
    /// The daemon closed the connection (it exited or crashed).
    Closed,
    /// No complete answer before the deadline.
    Timeout { waiting_for: String, after: Duration },
    /// Something that is not QMP came back, or the socket failed.
    Protocol(String),
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpError::Command { command, desc, .. } => write!(f, "unable to execute QEMU command '{command}': {desc}"),
            QmpError::Connect(e) => write!(f, "cannot connect to the QMP socket: {e}"),
            QmpError::Closed => write!(f, "the QMP connection was closed"),
            QmpError::Timeout { waiting_for, after } => {
                write!(f, "no answer to {waiting_for} within {:.1}s", after.as_secs_f64())
            }
            QmpError::Protocol(e) => write!(f, "QMP protocol error: {e}"),
        }
    }
}

/// A connection to a QEMU process's monitor, ready for commands.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
    events: VecDeque<Value>,
    timeout: Duration,
    /// Set once the connection failed; later calls fail at once.
    broken: bool,
    /// The start of a line not yet complete when a wait ended.
    pending: String,
}

impl Qmp {
    /// Connects, reads the greeting and negotiates capabilities. `timeout` bounds every
    /// later wait for an answer.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let stream =
            UnixStream::connect(socket).map_err(|e| QmpError::Connect(format!("{}: {e}", socket.display())))?;
        let writer = stream.try_clone().map_err(|e| QmpError::Connect(e.to_string()))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
            events: VecDeque::new(),
            timeout,
            broken: false,
            pending: String::new(),
        };
        let deadline = Instant::now() + timeout;
        let greeting = qmp.read_message(deadline, "the QMP greeting")?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!("unexpected greeting {greeting}")));
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    /// The bound on each wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs a command and returns its `return` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.execute_within(command, arguments, self.timeout)
    }

    /// Runs a command, waiting at most `timeout` for its answer.
    pub fn execute_within(
        &mut self,
        command: &str,
        arguments: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, QmpError> {
        let mut request = Map::new();
        request.insert("execute".into(), Value::String(command.into()));
        if let Some(args) = arguments {
            request.insert("arguments".into(), args);
        }
        let message = self.exchange(request, command, timeout)?;
        if let Some(value) = message.get("return") {
            return Ok(value.clone());
        }
        if let Some(error) = message.get("error") {
            let text = |k: &str| error.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            return Err(QmpError::Command { command: command.to_string(), class: text("class"), desc: text("desc") });
        }
        Err(QmpError::Protocol(format!("unexpected reply {message}")))
    }

    /// Sends a request given whole (an object with `execute` and maybe `arguments`) and
    /// returns the whole reply, `{"return": ...}` or `{"error": ...}`, with the `id` this
    /// connection gave it: for commands an application writes itself.
    pub fn execute_raw(&mut self, request: Map<String, Value>) -> Result<Value, QmpError> {
        let what = request.get("execute").and_then(Value::as_str).unwrap_or("a command").to_string();
        self.exchange(request, &what, self.timeout)
    }

    /// Sends `request` under a new id and waits for the reply with that id; events that
    /// arrive meanwhile are kept aside.
    fn exchange(&mut self, mut request: Map<String, Value>, what: &str, timeout: Duration) -> Result<Value, QmpError> {
        if self.broken {
            return Err(QmpError::Closed);
        }
        let id = self.next_id;
        self.next_id += 1;
        request.insert("id".into(), json!(id));
        let mut line = Value::Object(request).to_string();
        line.push('\n');
        if let Err(e) = self.writer.write_all(line.as_bytes()) {
            self.broken = true;
            return Err(if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) {
                QmpError::Closed
            } else {
                QmpError::Protocol(e.to_string())
            });
        }
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.read_message(deadline, &format!("'{what}'"))?;
            if message.get("event").is_some() {
                self.events.push_back(message);
            } else if message.get("id") == Some(&json!(id)) {
                return Ok(message);
            }
            // Otherwise an answer to a command this connection gave up on earlier: skip it.
        }
    }

    /// Events received so far, oldest first; they are removed from the queue.
    pub fn take_events(&mut self) -> Vec<Value> {
        self.events.drain(..).collect()
    }

    /// Waits until an event for which `wanted` is true arrives (or was already queued),
    /// and returns it. Other events stay queued.
    pub fn wait_event(&mut self, timeout: Duration, mut wanted: impl FnMut(&Value) -> bool) -> Result<Value, QmpError> {
        if let Some(at) = self.events.iter().position(&mut wanted) {
            return Ok(self.events.remove(at).expect("position is valid"));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let message = self.read_message(deadline, "an event")?;
            if message.get("event").is_some() {
                if wanted(&message) {
                    return Ok(message);
                }
                self.events.push_back(message);
            }
        }
    }

    /// Waits at most `timeout` for the next event. Unlike a command that gets no answer,
    /// a quiet spell leaves the connection usable: `Ok(None)`.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Value>, QmpError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        if self.broken {
            return Err(QmpError::Closed);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_line_until(deadline) {
                Ok(Some(message)) if message.get("event").is_some() => return Ok(Some(message)),
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the next message; running out of time ends the connection, since the answer
    /// being waited for may still come.
    fn read_message(&mut self, deadline: Instant, waiting_for: &str) -> Result<Value, QmpError> {
        match self.read_line_until(deadline)? {
            Some(message) => Ok(message),
            None => {
                self.broken = true;
                Err(QmpError::Timeout { waiting_for: waiting_for.to_string(), after: self.timeout })
            }
        }
    }

    /// Reads one message, or `None` when `deadline` passes first (a partial line is kept
    /// for the next read).
    fn read_line_until(&mut self, deadline: Instant) -> Result<Option<Value>, QmpError> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            // The timeout applies per read; partial lines are kept in `pending`.
            let _ = self.reader.get_ref().set_read_timeout(Some(deadline - now));
            match self.reader.read_line(&mut self.pending) {
                Ok(0) => {
                    self.broken = true;
                    return Err(QmpError::Closed);
                }
                Ok(_) if self.pending.ends_with('\n') => {
                    let line = std::mem::take(&mut self.pending);
                    let text = line.trim();
                    if text.is_empty() {
                        continue;
                    }
                    return serde_json::from_str(text).map(Some).map_err(|e| {
                        self.broken = true;
                        QmpError::Protocol(format!("bad JSON from QEMU ({e}): {text}"))
                    });
                }
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    self.broken = true;
                    return Err(QmpError::Closed);
                }
                Err(e) => {
                    self.broken = true;
                    return Err(QmpError::Protocol(e.to_string()));
                }
            }
        }
    }
}

/// A scripted QMP server, for the tests of the code that talks to QEMU.
#[cfg(test)]
pub(crate) mod fake {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::thread;

    use serde_json::Value;

    /// A fake QMP server running `script` on the accepted connection.
    pub(crate) fn serve(script: impl FnOnce(UnixStream) + Send + 'static) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            script(stream);
        });
        (dir, path)
    }

    pub(crate) fn read_request(reader: &mut BufReader<UnixStream>) -> Value {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    pub(crate) fn greet_and_negotiate(stream: &UnixStream) -> BufReader<UnixStream> {
        let mut out = stream.try_clone().unwrap();
        writeln!(out, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let req = read_request(&mut reader);
        assert_eq!(req["execute"], "qmp_capabilities");
        writeln!(out, r#"{{"return": {{}}, "id": {}}}"#, req["id"]).unwrap();
        reader
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{greet_and_negotiate, read_request, serve};
    use super::*;
    use std::io::Read;
    use std::thread;

    #[test]
    fn commands_events_and_errors() {
        let (_dir, path) = serve(|stream| {
            let mut reader = greet_and_negotiate(&stream);
            let mut out = stream.try_clone().unwrap();
            let req = read_request(&mut reader);
            assert_eq!(req["execute"], "query-jobs");
            writeln!(out, r#"{{"event": "JOB_STATUS_CHANGE", "data": {{"id": "j", "status": "running"}}}}"#).unwrap();
            writeln!(out, r#"{{"return": [1, 2], "id": {}}}"#, req["id"]).unwrap();
            let req = read_request(&mut reader);
            assert_eq!(req["arguments"]["node"], "n");
            writeln!(
                out,
                r#"{{"error": {{"class": "GenericError", "desc": "Dirty bitmap 'x' not found"}}, "id": {}}}"#,
                req["id"]
            )
            .unwrap();
            writeln!(out, r#"{{"event": "BLOCK_JOB_COMPLETED", "data": {{"device": "j"}}}}"#).unwrap();
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
        });
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(qmp.execute("query-jobs", None).unwrap(), json!([1, 2]));
        let err = qmp.execute("block-dirty-bitmap-remove", Some(json!({"node": "n", "name": "x"}))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to execute QEMU command 'block-dirty-bitmap-remove': Dirty bitmap 'x' not found"
        );
        let done = qmp.wait_event(Duration::from_secs(5), |e| e["event"] == "BLOCK_JOB_COMPLETED").unwrap();
        assert_eq!(done["data"]["device"], "j");
        let queued = qmp.take_events();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0]["event"], "JOB_STATUS_CHANGE");
    }

    #[test]
    fn a_dead_daemon_is_an_error_not_a_hang() {
        let (_dir, path) = serve(|stream| {
            let mut reader = greet_and_negotiate(&stream);
            let _ = read_request(&mut reader);
            // Exit without answering.
        });
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(qmp.execute("quit", None), Err(QmpError::Closed));
        assert_eq!(qmp.execute("query-jobs", None), Err(QmpError::Closed));
    }

    #[test]
    fn a_wedged_daemon_times_out() {
        let (_dir, path) = serve(|stream| {
            let mut reader = greet_and_negotiate(&stream);
            let _ = read_request(&mut reader);
            thread::sleep(Duration::from_secs(3));
        });
        let mut qmp = Qmp::connect(&path, Duration::from_millis(300)).unwrap();
        let started = Instant::now();
        let err = qmp.execute("query-jobs", None).unwrap_err();
        assert!(matches!(err, QmpError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_quiet_spell_between_events_keeps_the_connection() {
        let (_dir, path) = serve(|stream| {
            let _reader = greet_and_negotiate(&stream);
            let mut out = stream.try_clone().unwrap();
            thread::sleep(Duration::from_millis(150));
            // An event split across two writes.
            write!(out, r#"{{"event": "JOB_STATUS_CHANGE", "#).unwrap();
            out.flush().unwrap();
            thread::sleep(Duration::from_millis(50));
            writeln!(out, r#""data": {{"id": "j", "status": "concluded"}}}}"#).unwrap();
            thread::sleep(Duration::from_millis(50));
        });
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(qmp.next_event(Duration::from_millis(20)).unwrap(), None);
        let mut got = None;
        for _ in 0..100 {
            if let Some(event) = qmp.next_event(Duration::from_millis(10)).unwrap() {
                got = Some(event);
                break;
            }
        }
        assert_eq!(got.unwrap()["data"]["status"], "concluded");
        assert_eq!(qmp.next_event(Duration::from_secs(2)), Err(QmpError::Closed));
    }

    #[test]
    fn no_socket_is_a_connect_error() {
        let err = Qmp::connect(Path::new("/nonexistent/qmp.sock"), Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, QmpError::Connect(_)));
    }
}
