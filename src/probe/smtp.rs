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

/// Connects within `timeout`; reads on the stream may take what is left of it.
fn connect(addr: SocketAddr, timeout: Duration) -> Result<(TcpStream, Instant), String> {
    let started = Instant::now();
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    let left = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(left))
        .map_err(|e| e.to_string())?;
    Ok((stream, started))
}

/// Reads the greeting of the SMTP server at `addr`, giving up after `timeout`. With
/// `first_line`, the first line of a multi-line greeting is enough (postscreen sends
/// `220-` and delays the rest while it tests the client).
pub fn probe_until(
    addr: SocketAddr,
    timeout: Duration,
    first_line: bool,
) -> Result<Banner, String> {
    let (stream, started) = connect(addr, timeout)?;
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

/// A TLS ClientHello that any TLS 1.2 or 1.3 server answers: common cipher suites,
/// groups and signature algorithms, and an empty key share (a TLS 1.3 server then
/// asks for one with a HelloRetryRequest, which is a handshake record too). Built by
/// hand, as the probe needs only the server's first record, not a session.
fn client_hello() -> Vec<u8> {
    fn with_len16(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }
    fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut v = kind.to_be_bytes().to_vec();
        v.extend(with_len16(data));
        v
    }
    let u16s = |xs: &[u16]| xs.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
    let suites = u16s(&[
        0x1301, 0x1302, 0x1303, // TLS 1.3
        0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, // ECDHE with AEAD
        0xc009, 0xc013, 0xc00a, 0xc014, // ECDHE with CBC
        0x009e, 0x009f, 0x009c, 0x009d, 0x002f, 0x0035, // DHE and RSA
    ]);
    let groups = u16s(&[0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101]);
    let sigalgs = u16s(&[
        0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201,
    ]);
    let mut extensions = Vec::new();
    extensions.extend(extension(0x000a, &with_len16(&groups)));
    extensions.extend(extension(0x000b, &[1, 0]));
    extensions.extend(extension(0x000d, &with_len16(&sigalgs)));
    extensions.extend(extension(0x002b, &[4, 0x03, 0x04, 0x03, 0x03]));
    extensions.extend(extension(0x0033, &with_len16(&[])));
    let mut hello = vec![0x03, 0x03];
    hello.extend((0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    hello.push(0); // no session id
    hello.extend(with_len16(&suites));
    hello.extend([1, 0]); // null compression
    hello.extend(with_len16(&extensions));
    let mut handshake = vec![0x01];
    handshake.extend(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(with_len16(&handshake));
    record
}

/// Connects to a TLS-wrapped SMTP service (smtpd with `smtpd_tls_wrappermode = yes`,
/// port 465), sends a ClientHello and waits for the server's first TLS record: a
/// handshake record means the server's TLS works. Returns the time it took.
pub fn probe_tls(addr: SocketAddr, timeout: Duration) -> Result<Duration, String> {
    let (mut stream, started) = connect(addr, timeout)?;
    // A server that hangs up without reading the ClientHello makes the kernel reset
    // the connection, which the write or the read may see.
    let hung_up = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        )
    };
    let closed = || {
        Err(
            "closed the connection without a TLS answer (the server's TLS setup fails: \
             no certificate or key?)"
                .to_string(),
        )
    };
    match stream.write_all(&client_hello()) {
        Ok(()) => {}
        Err(e) if hung_up(&e) => return closed(),
        Err(e) => return Err(format!("cannot send a TLS ClientHello: {e}")),
    }
    // A record header (type, version, length) and, for an alert, its level and code.
    let mut head = [0u8; 7];
    let mut got = 0;
    while got < head.len() {
        match std::io::Read::read(&mut stream, &mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if hung_up(&e) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if got > 0 {
                    break;
                }
                return Err(format!("no TLS answer within {} ms", timeout.as_millis()));
            }
            Err(e) => return Err(e.to_string()),
        }
        if head[0] == 0x16 {
            return Ok(started.elapsed());
        }
    }
    match (got, head[0]) {
        (0, _) => closed(),
        (7, 0x15) => Err(format!("answered with TLS alert {}", head[6])),
        _ => Err(format!("answered {:02x?}, which is not TLS", &head[..got])),
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
        let banner = probe_until(addr, Duration::from_secs(2), false).unwrap();
        assert_eq!(banner.text, "220 mx.example ESMTP");
    }

    #[test]
    fn first_line_can_be_enough() {
        let addr = serve_once("220-mx.example pregreet\r\n");
        let banner = probe_until(addr, Duration::from_millis(500), true).unwrap();
        assert_eq!(banner.text, "220-mx.example pregreet");
        let addr = serve_once("220-mx.example pregreet\r\n");
        let err = probe_until(addr, Duration::from_millis(100), false).unwrap_err();
        assert!(err.contains("no greeting within 100 ms"), "{err}");
    }

    #[test]
    fn rejects_other_codes() {
        let addr = serve_once("554 go away\r\n");
        assert!(
            probe_until(addr, Duration::from_secs(2), false)
                .unwrap_err()
                .contains("554")
        );
    }

    #[test]
    fn client_hello_lengths_add_up() {
        let hello = client_hello();
        assert_eq!(hello[0], 0x16);
        let record = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        assert_eq!(record, hello.len() - 5);
        assert_eq!(hello[5], 0x01, "a ClientHello");
        let body = u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize;
        assert_eq!(body, hello.len() - 9);
    }

    #[test]
    fn tls_probe_tells_handshake_from_hangup() {
        let addr = serve_once("\x16\x03\x03\x00\x10");
        assert!(probe_tls(addr, Duration::from_secs(2)).is_ok());
        let addr = serve_once("\x15\x03\x03\x00\x02\x02\x28");
        let err = probe_tls(addr, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err, "answered with TLS alert 40");
        let addr = serve_once("220 plain text\r\n");
        assert!(
            probe_tls(addr, Duration::from_secs(2))
                .unwrap_err()
                .contains("not TLS")
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || drop(listener.accept().unwrap()));
        let err = probe_tls(addr, Duration::from_secs(2)).unwrap_err();
        assert!(err.contains("without a TLS answer"), "{err}");
    }

    #[test]
    fn refused_connection_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(probe_until(addr, Duration::from_secs(1), false).is_err());
    }
}
