//! A real `ember serve` process for the binary's tests: started on 127.0.0.1:0, its address read
//! from stderr, killed when dropped; and one-shot HTTP requests to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::temp;

/// A running `ember serve`, its stderr collected, killed if the test fails early.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_server(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg("serve")
        .args(args)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", temp("serve-hf-home"))
        .env_remove("EMBER_API_KEY")
        .env_remove("EMBER_DATA_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("ember: listening on http://") {
                let _ = tx.send(addr.to_string());
            }
            sink.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
        let _ = child.kill();
        panic!("ember serve did not print its address; stderr:\n{}", log.lock().unwrap())
    });
    Server { child, addr, log }
}

/// One HTTP/1.1 request on a fresh connection; the status and the body.
pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer k3y\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}
