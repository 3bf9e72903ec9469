//! Reaching a container from the host: `forwardPorts` in mkContainer becomes Incus proxy
//! devices, proven on loopback only with busybox's web server in the synthetic system.

use super::harness::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// A port nothing listens on now (the kernel's pick for a socket bound to port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The body of `GET /` on 127.0.0.1:`port`, or why there is none.
fn get(port: u16) -> Result<String, String> {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply).map_err(|e| e.to_string())?;
    match reply.split_once("\r\n\r\n") {
        Some((_, body)) if !body.trim().is_empty() => Ok(body.trim().to_string()),
        _ => Err(format!("no page in the reply {reply:?}")),
    }
}

/// `get` until it returns a page (the server starts with the container), for up to 10 s.
fn page(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match get(port) {
            Ok(body) => return body,
            Err(e) if Instant::now() > deadline => panic!("GET 127.0.0.1:{port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A system whose activation (at boot and at every switch) brings the container's loopback up
/// and (re)starts busybox's httpd on port 80 with `text` as its page.
const WEB: &str = r#"
      web = version: text: sysWith version ''
        ip link set lo up
        mkdir -p /var/www
        echo '${text}' >/var/www/index.html
        killall httpd 2>/dev/null || true
        httpd -p 80 -h /var/www
      '';
"#;

fn declare_web(fx: &Fixture, name: &str, version: &str, text: &str, port: u16) {
    fx.write_flake_parts(
        WEB,
        &format!(
            "        {name} = inx.lib.mkContainer {{ toplevel = web \"{version}\" \"{text}\"; \
             forwardPorts = [ {{ hostPort = {port}; containerPort = 80; listenAddress = \"127.0.0.1\"; }} ]; }};\n"
        ),
        "",
    );
}

/// A forward declared in mkContainer reaches the container's web server from the host's
/// loopback; a changed system and a changed host port apply without a restart, and the old
/// port stops answering.
#[test]
fn a_forwarded_port_reaches_the_containers_web_server_and_follows_changes_in_place() {
    let _host = host!("forward");
    let fx = Fixture::new("forward");
    let web = fx.name("web");
    let (first, second) = (free_port(), free_port());
    assert_ne!(first, second);

    declare_web(&fx, &web, "1", "page one", first);
    fx.up(&[]);
    assert_eq!(page(first), "page one");
    let device = instance(&web).unwrap()["devices"][format!("forward-tcp-{first}")].clone();
    assert_eq!(device["type"], "proxy", "{device}");
    assert_eq!(
        device["listen"],
        format!("tcp:127.0.0.1:{first}"),
        "{device}"
    );
    assert_eq!(device["connect"], "tcp:127.0.0.1:80", "{device}");
    let init = pid(&web);

    declare_web(&fx, &web, "2", "page two", second);
    fx.up(&[]).stderr_has("in place");
    assert_eq!(
        pid(&web),
        init,
        "no restart for a new system and a new forward"
    );
    assert_eq!(page(second), "page two");
    assert!(
        get(first).is_err(),
        "the old forward still answers on 127.0.0.1:{first}"
    );
    let devices = instance(&web).unwrap()["devices"].clone();
    assert!(
        devices.get(format!("forward-tcp-{first}")).is_none(),
        "{devices}"
    );
}
