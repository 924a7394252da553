//! A minimal HTTP server standing in for your program: cvmkit-runtime starts it with `PORT` set
//! (3001 for the first workload) and it answers every request with one line.

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3001".into());
    let listener = TcpListener::bind(format!("0.0.0.0:{port}")).expect("cannot listen on $PORT");
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let body = format!("hello from your program in a cvmkit image, port {port}\n");
        let _ = write!(
            s,
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    }
}
