//! The live status: WebSockets of `/debug/towns/{t}/status/ws`, accepted through the Durable
//! Object's hibernation API (the platform holds the socket; a town with a watcher and no tick
//! costs no duration), each sent the status snapshot, the JSON of `GET .../status`, after every
//! tick. What a client sends is ignored but for a close.

use crate::http::debug::ticket::PROTOCOL;
use crate::http::Request;
use serde_json::Value as Json;
use worker::{Response, Result, State, WebSocketPair};

/// Accepts a status socket; answers the [`PROTOCOL`] when the client offered it (a browser
/// offering a ticket does, and fails the socket unless one of its protocols is answered).
pub fn accept(state: &State, req: &Request) -> Result<Response> {
    let pair = WebSocketPair::new()?;
    state.accept_web_socket(&pair.server);
    let offered = req
        .get_header("sec-websocket-protocol")
        .is_some_and(|p| p.split(',').any(|p| p.trim() == PROTOCOL));
    let mut response = Response::from_websocket(pair.client)?;
    if offered {
        response
            .headers_mut()
            .set("sec-websocket-protocol", PROTOCOL)?;
    }
    Ok(response)
}

/// Whether any status socket is open (the snapshot is built only for someone).
pub fn watched(state: &State) -> bool {
    !state.get_websockets().is_empty()
}

/// Sends `snapshot` to every open status socket; a socket that cannot take it is closed.
pub fn broadcast(state: &State, snapshot: &Json) {
    let text = snapshot.to_string();
    for socket in state.get_websockets() {
        if let Err(e) = socket.send_with_str(&text) {
            crate::log::warn("status_socket_dropped", &[("error", &e.to_string())]);
            let _ = socket.close(Some(1011), Some("send failed"));
        }
    }
}
