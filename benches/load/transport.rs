//! What the load tool's clients run over: plain TCP, or STOMP over WebSocket (`ws://`), so that
//! both are measured with the same client code.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use stomp_blocking::Stream;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Bytes, Message, WebSocket};

/// One client's connection.
pub(crate) enum Transport {
    Tcp(TcpStream),
    /// WebSocket messages, and what is left of the last one received.
    Ws(Box<WebSocket<TcpStream>>, Bytes),
}

impl Transport {
    /// `host:port` for TCP, `ws://host:port/path` for WebSocket (sub-protocol `v12.stomp`).
    pub(crate) fn open(addr: &str) -> io::Result<Transport> {
        let Some(rest) = addr.strip_prefix("ws://") else {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            return Ok(Transport::Tcp(stream));
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let stream = TcpStream::connect(authority)?;
        stream.set_nodelay(true)?;
        let mut request = addr.into_client_request().map_err(io::Error::other)?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "v12.stomp, v11.stomp, v10.stomp"
                .parse()
                .expect("a header value"),
        );
        let (ws, _) = tungstenite::client(request, stream).map_err(io::Error::other)?;
        Ok(Transport::Ws(Box::new(ws), Bytes::new()))
    }
}

/// A tungstenite error as the I/O error the client expects: a timed-out read stays one, so
/// that the next read resumes the message.
fn io_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (ws, left) = match self {
            Transport::Tcp(stream) => return stream.read(buf),
            Transport::Ws(ws, left) => (ws, left),
        };
        while left.is_empty() {
            *left = match ws.read() {
                Ok(Message::Text(text)) => text.into(),
                Ok(Message::Binary(bytes)) => bytes,
                Ok(Message::Close(_))
                | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(0);
                }
                Ok(_) => continue,
                Err(e) => return Err(io_error(e)),
            };
        }
        let n = buf.len().min(left.len());
        buf[..n].copy_from_slice(&left.split_to(n));
        Ok(n)
    }
}

impl Write for Transport {
    /// Over WebSocket each write is one message, text when it can be: buffered until `flush`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let ws = match self {
            Transport::Tcp(stream) => return stream.write(buf),
            Transport::Ws(ws, _) => ws,
        };
        let message = match std::str::from_utf8(buf) {
            Ok(text) => Message::text(text),
            Err(_) => Message::binary(buf.to_vec()),
        };
        ws.write(message).map_err(io_error)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => stream.flush(),
            Transport::Ws(ws, _) => ws.flush().map_err(io_error),
        }
    }
}

impl Stream for Transport {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => stream.set_read_timeout(timeout),
            Transport::Ws(ws, _) => ws.get_mut().set_read_timeout(timeout),
        }
    }

    fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Transport::Tcp(stream) => Stream::shutdown(stream),
            Transport::Ws(ws, _) => {
                let _ = ws.close(None);
                let _ = ws.flush();
                Stream::shutdown(ws.get_mut())
            }
        }
    }
}
