//! A TCP proxy in front of a test's sshd that misbehaves after a number of
//! bytes from the client: it cuts the connection, or stalls it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

/// What happens once `limit` bytes from the client have passed.
#[derive(Clone, Copy)]
pub enum Fault {
    /// The connection is closed both ways: a dropped line.
    Cut,
    /// Nothing more is forwarded, and nothing is closed: a hung upload.
    Stall,
    /// [`Fault::Stall`] on the first connection only; the later ones pass
    /// everything (a session that hung, and a server fine to dial again).
    StallFirst,
    /// Everything passes, but at most this many bytes a second each way: a
    /// slow line that never stops moving.
    Throttle(usize),
    /// Towards us, the connection is cut after this many bytes (a download
    /// cut short); towards the server, everything passes.
    CutBack(usize),
}

/// Listens on an ephemeral port and forwards to `port` until `limit`.
pub fn proxy(port: u16, limit: usize, fault: Fault) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (nth, client) in listener.incoming().flatten().enumerate() {
            let (limit, fault) = match fault {
                Fault::StallFirst if nth > 0 => (usize::MAX, Fault::Cut),
                Fault::StallFirst => (limit, Fault::Stall),
                other => (limit, other),
            };
            let server = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                let mut passed: usize = 0;
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if passed.saturating_add(n) > limit {
                        if let Fault::Stall = fault {
                            std::thread::sleep(Duration::from_secs(120));
                        }
                        break;
                    }
                    if let Fault::Throttle(rate) = fault {
                        std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                    }
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    passed += n;
                }
                c_read.shutdown(Shutdown::Both).ok();
                s_write.shutdown(Shutdown::Both).ok();
            });
            std::thread::spawn(move || {
                if let Fault::Throttle(rate) = fault {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = s_read.read(&mut buf) {
                        std::thread::sleep(Duration::from_secs_f64(n as f64 / rate as f64));
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                } else if let Fault::CutBack(back) = fault {
                    let mut buf = [0u8; 16 * 1024];
                    let mut passed = 0usize;
                    while let Ok(n @ 1..) = s_read.read(&mut buf) {
                        if passed + n > back || c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        passed += n;
                    }
                    s_read.shutdown(Shutdown::Both).ok();
                } else {
                    std::io::copy(&mut s_read, &mut c_write).ok();
                }
                c_write.shutdown(Shutdown::Both).ok();
            });
        }
    });
    proxy_port
}
