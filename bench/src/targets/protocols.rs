//! The small TCP health exchanges the target process answers itself, one
//! connection at a time, as the built-ins' checks send them
//! (`connectors/{redis,nats,mqtt}/src`):
//!
//! - RESP: `PING` -> `+PONG`, `INFO server` -> a bulk string with
//!   `redis_version`, `AUTH` -> `+OK`, anything else -> `-ERR`;
//! - NATS: `INFO {...}` on connect, `PING` -> `PONG` (`CONNECT` is taken
//!   without `+OK`, as `verbose: false` asks);
//! - MQTT 3.1.1: `CONNECT` -> `CONNACK` accepted, `DISCONNECT` ends.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest line or bulk string read.
const MAX_LINE: usize = 64 * 1024;

pub async fn redis(stream: TcpStream) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    while let Some(args) = resp_command(&mut read).await? {
        let name = args
            .first()
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        match name.as_slice() {
            b"PING" => write.write_all(b"+PONG\r\n").await?,
            b"AUTH" => write.write_all(b"+OK\r\n").await?,
            b"INFO" => {
                let info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nuptime_in_seconds:3600\r\n";
                write
                    .write_all(format!("${}\r\n{info}\r\n", info.len()).as_bytes())
                    .await?;
            }
            b"QUIT" => {
                write.write_all(b"+OK\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"-ERR unknown command\r\n").await?,
        }
    }
    Ok(())
}

/// One command: a RESP array of bulk strings, or an inline command; `None`
/// when the client hung up.
async fn resp_command<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
) -> io::Result<Option<Vec<Vec<u8>>>> {
    let Some(line) = read_line(read).await? else {
        return Ok(None);
    };
    let Some(count) = line.strip_prefix(b"*") else {
        return Ok(Some(
            line.split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .map(<[u8]>::to_vec)
                .collect(),
        ));
    };
    let count = number(count)?;
    let mut args = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        let header = read_line(read).await?.ok_or_else(cut_short)?;
        let len = number(
            header
                .strip_prefix(b"$")
                .ok_or_else(|| bad("a bulk string"))?,
        )?;
        if len > MAX_LINE {
            return Err(bad("a bulk string of at most 64 KiB"));
        }
        let mut arg = vec![0; len + 2];
        read.read_exact(&mut arg).await?;
        arg.truncate(len);
        args.push(arg);
    }
    Ok(Some(args))
}

pub async fn nats(stream: TcpStream) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write
        .write_all(b"INFO {\"server_id\":\"NBENCH\",\"server_name\":\"sandport-bench\",\"version\":\"2.9.10\",\"proto\":1,\"host\":\"127.0.0.1\",\"max_payload\":1048576,\"auth_required\":false,\"jetstream\":false}\r\n")
        .await?;
    while let Some(line) = read_line(&mut read).await? {
        if line == b"PING" {
            write.write_all(b"PONG\r\n").await?;
        }
    }
    Ok(())
}

pub async fn mqtt(mut stream: TcpStream) -> io::Result<()> {
    loop {
        let mut kind = [0u8; 1];
        if stream.read(&mut kind).await? == 0 {
            return Ok(());
        }
        // The remaining length: up to four bytes of seven bits each.
        let mut len = 0usize;
        for shift in 0..4 {
            let byte = stream.read_u8().await?;
            len |= usize::from(byte & 0x7f) << (7 * shift);
            if byte & 0x80 == 0 {
                break;
            }
        }
        if len > MAX_LINE {
            return Err(bad("an MQTT packet of at most 64 KiB"));
        }
        let mut rest = vec![0; len];
        stream.read_exact(&mut rest).await?;
        match kind[0] & 0xf0 {
            0x10 => stream.write_all(&[0x20, 0x02, 0x00, 0x00]).await?,
            0xe0 => return Ok(()),
            0xc0 => stream.write_all(&[0xd0, 0x00]).await?,
            _ => {}
        }
    }
}

/// A line without its `\r\n`; `None` at the end of the stream.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = (&mut *read)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(bad("a line of at most 64 KiB"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

fn number(digits: &[u8]) -> io::Result<usize> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| bad("a length"))
}

fn bad(expected: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("expected {expected}"))
}

fn cut_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the command was cut short")
}
