//! The SMTP banner probe: connect, read the 220 greeting, say QUIT. It proves an
//! instance really serves, which a live master process alone does not.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A banner that answered, and how long it took.
#[derive(Debug, Clone)]
pub struct Banner {
    pub text: String,
    pub latency: Duration,
}

/// Reads the greeting of the SMTP server at `addr`, giving up after `timeout`.
pub fn probe(addr: SocketAddr, timeout: Duration) -> Result<Banner, String> {
    probe_until(addr, timeout, false)
}

/// Like [`probe`]; with `first_line`, the first line of a multi-line greeting is
/// enough (postscreen sends `220-` and delays the rest while it tests the client).
pub fn probe_until(
    addr: SocketAddr,
    timeout: Duration,
    first_line: bool,
) -> Result<Banner, String> {
    let started = Instant::now();
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    // A multi-line greeting continues with "220-"; the last line has "220 ".
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("connection closed before the greeting".into()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no greeting within {} ms", timeout.as_millis()));
            }
            Err(e) => return Err(e.to_string()),
        }
        if first_line || !line.starts_with("220-") {
            break;
        }
    }
    let latency = started.elapsed();
    let text = line.trim_end().to_string();
    // Say goodbye once greeted in full. In the middle of a multi-line greeting (a
    // postscreen pregreet test) a command would count as talking out of turn, so just
    // hang up.
    if !text.starts_with("220-") {
        let _ = (&stream).write_all(b"QUIT\r\n");
    }
    if text.starts_with("220 ") || text == "220" || (first_line && text.starts_with("220-")) {
        Ok(Banner { text, latency })
    } else {
        Err(format!("unexpected greeting {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(reply: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(reply.as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        addr
    }

    #[test]
    fn reads_multiline_greeting() {
        let addr = serve_once("220-first\r\n220 mx.example ESMTP\r\n");
        let banner = probe(addr, Duration::from_secs(2)).unwrap();
        assert_eq!(banner.text, "220 mx.example ESMTP");
    }

    #[test]
    fn first_line_can_be_enough() {
        let addr = serve_once("220-mx.example pregreet\r\n");
        let banner = probe_until(addr, Duration::from_millis(500), true).unwrap();
        assert_eq!(banner.text, "220-mx.example pregreet");
        let addr = serve_once("220-mx.example pregreet\r\n");
        let err = probe(addr, Duration::from_millis(100)).unwrap_err();
        assert!(err.contains("no greeting within 100 ms"), "{err}");
    }

    #[test]
    fn rejects_other_codes() {
        let addr = serve_once("554 go away\r\n");
        assert!(
            probe(addr, Duration::from_secs(2))
                .unwrap_err()
                .contains("554")
        );
    }

    #[test]
    fn refused_connection_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(probe(addr, Duration::from_secs(1)).is_err());
    }
}
