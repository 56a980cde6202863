//! The browser side of one console tab: an xterm.js terminal (through xterm-js-rs) joined to
//! the server's console WebSocket. Only in the WebAssembly build.
//!
//! Output arrives in binary frames and goes to xterm.js as bytes; once xterm.js has drawn a
//! frame, its write callback acknowledges that many bytes, which is what lets the server read
//! more from the target (see the server's `webssh` module). Keys and pastes go back as binary
//! frames; size changes as `{"type":"resize"}` messages.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{ArrayBuffer, Function, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, HtmlElement, MessageEvent, WebSocket};
use xterm_js_rs::addons::fit::FitAddon;
use xterm_js_rs::{Terminal, TerminalAddon, TerminalOptions};

#[wasm_bindgen]
extern "C" {
    /// The same xterm.js terminal object, seen through the one method the crate lacks:
    /// xterm.js 5 and later take bytes through `write(data, callback)`; the crate binds the
    /// `writeUtf8` of xterm.js 4, which no longer exists.
    type ByteWriter;

    #[wasm_bindgen(method, js_name = "write")]
    fn write_bytes(this: &ByteWriter, data: &Uint8Array, callback: &Function);
}

/// Another handle on the same JavaScript terminal (the crate's types are not `Clone`).
fn same_term(term: &Terminal) -> Terminal {
    let value: &JsValue = term.as_ref();
    value.clone().unchecked_into()
}

fn same_fit(fit: &FitAddon) -> FitAddon {
    let value: &JsValue = fit.as_ref();
    value.clone().unchecked_into()
}

/// What a tab shows about its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Connecting,
    Connected,
    /// The session ended or the connection dropped, with the reason to show.
    Closed(String),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    // A struct variant, so the message's other fields (the server's name) are ignored.
    Connected {},
    Closed {
        reason: String,
        exit_status: Option<u32>,
    },
}

/// A live terminal tab. Dropping it closes the socket and disposes of the terminal.
pub struct Live {
    term: Terminal,
    fit: FitAddon,
    socket: WebSocket,
    size: Rc<Cell<(u32, u32)>>,
    on_resize: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut()>,
    _on_data: Closure<dyn FnMut(String)>,
}

fn console_url(server: &str, cols: u32, rows: u32) -> Result<String, JsValue> {
    let location = web_sys::window().ok_or("no window")?.location();
    let scheme = if location.protocol()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    let server = js_sys::encode_uri_component(server);
    Ok(format!(
        "{scheme}://{}{}?server={server}&cols={cols}&rows={rows}",
        location.host()?,
        crate::paths::CONSOLE_WS
    ))
}

fn send_resize(socket: &WebSocket, cols: u32, rows: u32) {
    if socket.ready_state() == WebSocket::OPEN {
        let _ = socket.send_with_str(&format!(
            r#"{{"type":"resize","cols":{cols},"rows":{rows}}}"#
        ));
    }
}

impl Live {
    /// Opens a terminal in `parent` connected to `server`; `on_status` hears about the
    /// connection.
    pub fn start(
        parent: HtmlElement,
        server: &str,
        on_status: Rc<dyn Fn(Status)>,
    ) -> Result<Live, JsValue> {
        let options = TerminalOptions::new();
        options.set_cursor_blink(true);
        options.set_font_size(14);
        options.set_scrollback(5000);
        let term = Terminal::new(&options);
        term.open(parent);
        let fit = FitAddon::new();
        term.load_addon(same_fit(&fit).unchecked_into::<TerminalAddon>());
        fit.fit();
        let size = Rc::new(Cell::new((term.get_cols(), term.get_rows())));
        let (cols, rows) = size.get();

        let socket = WebSocket::new(&console_url(server, cols, rows)?)?;
        socket.set_binary_type(BinaryType::Arraybuffer);
        on_status(Status::Connecting);
        let closed = Rc::new(Cell::new(false));

        let on_message = {
            let term = same_term(&term);
            let socket = socket.clone();
            let on_status = on_status.clone();
            let closed = closed.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                let data = event.data();
                if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
                    let bytes = Uint8Array::new(buffer);
                    let len = bytes.length();
                    let socket = socket.clone();
                    let ack = Closure::once_into_js(move || {
                        if socket.ready_state() == WebSocket::OPEN {
                            let _ =
                                socket.send_with_str(&format!(r#"{{"type":"ack","bytes":{len}}}"#));
                        }
                    });
                    term.unchecked_ref::<ByteWriter>()
                        .write_bytes(&bytes, ack.unchecked_ref());
                } else if let Some(text) = data.as_string() {
                    match serde_json::from_str::<Control>(&text) {
                        Ok(Control::Connected {}) => on_status(Status::Connected),
                        Ok(Control::Closed {
                            reason,
                            exit_status,
                        }) => {
                            closed.set(true);
                            let reason = match exit_status {
                                Some(code) => format!("{reason} (exit status {code})"),
                                None => reason,
                            };
                            term.write(&format!("\r\n\x1b[7m {reason} \x1b[0m\r\n"));
                            on_status(Status::Closed(reason));
                        }
                        Err(_) => {}
                    }
                }
            })
        };
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));

        let on_close = {
            let on_status = on_status.clone();
            let closed = closed.clone();
            Closure::<dyn FnMut()>::new(move || {
                if !closed.replace(true) {
                    on_status(Status::Closed(
                        "The connection to the gateway dropped.".into(),
                    ));
                }
            })
        };
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        let on_data = {
            let socket = socket.clone();
            Closure::<dyn FnMut(String)>::new(move |text: String| {
                if socket.ready_state() == WebSocket::OPEN {
                    let _ = socket.send_with_u8_array(text.as_bytes());
                }
            })
        };
        let _ = term.on_data(on_data.as_ref().unchecked_ref());

        let on_resize = {
            let term = same_term(&term);
            let fit = same_fit(&fit);
            let socket = socket.clone();
            let size = size.clone();
            Closure::<dyn FnMut()>::new(move || {
                fit.fit();
                let now = (term.get_cols(), term.get_rows());
                if now != size.get() {
                    size.set(now);
                    send_resize(&socket, now.0, now.1);
                }
            })
        };
        if let Some(window) = web_sys::window() {
            let _ = window
                .add_event_listener_with_callback("resize", on_resize.as_ref().unchecked_ref());
        }

        Ok(Live {
            term,
            fit,
            socket,
            size,
            on_resize,
            _on_message: on_message,
            _on_close: on_close,
            _on_data: on_data,
        })
    }

    pub fn focus(&self) {
        self.term.focus();
    }

    /// Fits the terminal to its box again (after it was hidden, say) and tells the server.
    pub fn refit(&self) {
        self.fit.fit();
        let now = (self.term.get_cols(), self.term.get_rows());
        if now != self.size.get() {
            self.size.set(now);
            send_resize(&self.socket, now.0, now.1);
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(window) = web_sys::window() {
            let _ = window.remove_event_listener_with_callback(
                "resize",
                self.on_resize.as_ref().unchecked_ref(),
            );
        }
        self.socket.set_onclose(None);
        self.socket.set_onmessage(None);
        let _ = self.socket.close();
        self.term.dispose();
    }
}
