"""A SAML 2.0 identity provider for Jumpgate's tests, built on pysaml2 (a third-party IdP
implementation): Jumpgate's SAML code is checked against software we did not write.

    saml_idp.py --port PORT --sp-metadata URL_OR_FILE --dir DIR [--entity-id ID]
                [--clock-offset +1h] [--want-signed-requests] [--host 127.0.0.2]

It makes its own signing key and certificate (plus a second, untrusted "rogue" pair) in DIR,
or reuses those already there, so that a second instance can sign as the same IdP. With
--clock-offset it runs with libfaketime preloaded, as an IdP whose clock is wrong would. With
--want-signed-requests it refuses AuthnRequests whose Redirect-binding signature does not verify
against the certificate in the SP's metadata. --host picks another loopback address to listen
on (default 127.0.0.1): a browser counts 127.0.0.2 as another site than an SP on 127.0.0.1, as
it would a real IdP's domain. It prints "ready http://HOST:PORT" on standard output once it
listens, and serves:

    GET  /metadata         the IdP's metadata (entity ID is this URL)
    GET  /sso/redirect     SP-initiated sign-in, HTTP-Redirect binding: shows a sign-in form
    POST /sso/post         the same, HTTP-POST binding
    POST /sso/login        the form's answer: posts a signed Response to the SP's ACS
    GET  /portal           an application portal (like the AWS access portal) that launches the
                           SP without a request (IdP-initiated)
    GET  /launch?email=    the portal's launch: an unsolicited signed Response
    GET  /slo/redirect     single logout, HTTP-Redirect binding: takes the SP's LogoutRequest
                           (answering with a signed LogoutResponse) or its LogoutResponse
    GET  /slo/initiate?email=  an IdP-initiated logout: a signed LogoutRequest to the SP
    GET  /slo/log          what single logout saw, a line per message

Test-only knobs, accepted by /sso/login and /launch as form or query fields, let a test obtain
responses a misbehaving or hostile IdP would send, each still signed correctly:
    signer=rogue           sign with the key whose certificate is not in the metadata
    audience=other         address the assertion to another service provider
    destination=URL        send it (Destination and Recipient) to another address
    lifetime=SECONDS       validity window (negative: already expired)
    weak=1                 sign with RSA-SHA1 and SHA-1 digests, as old IdPs did
    username=, name=, groups=a,b   extra attributes

/slo/initiate takes knobs of its own: signer=rogue, unsigned=1, destination=URL,
session_index=, relay=, binding=post (a page that posts the request, its XML signed);
destination=none leaves the Destination out.

The SP's metadata is loaded on first use, so the SP may start after the IdP.
"""

import argparse
import glob
import html
import os
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.authn_context import PASSWORD
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server

OTHER_SP = "https://elsewhere.test/saml/metadata"
SHA256_SIGNATURE = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256_DIGEST = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1_SIGNATURE = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"


def make_key_pair(directory, name, days):
    key = os.path.join(directory, f"{name}.key")
    cert = os.path.join(directory, f"{name}.crt")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
             "-subj", f"/CN=Test IdP {name}", "-keyout", key, "-out", cert],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    return key, cert


class Idp:
    def __init__(self, base, entity_id, sp_metadata, directory, want_signed=False):
        self.base = base
        self.want_signed = want_signed
        self.entity_id = entity_id
        self.sp_metadata = sp_metadata
        self.directory = directory
        self.keys = {
            # The trusted certificate expires in 20 days, so that expiry warnings show.
            "trusted": make_key_pair(directory, "trusted", 20),
            "rogue": make_key_pair(directory, "rogue", 365),
        }
        self.lock = threading.Lock()
        self.sp_xml = None
        self.servers = {}
        self.pending = {}
        self.slo_log = []

    def config(self, signer, lifetime, sp_xml):
        key, cert = self.keys[signer]
        other_sp_xml = sp_xml.replace(self.sp_entity_id(sp_xml), OTHER_SP)
        conf = {
            "entityid": self.entity_id,
            "service": {
                "idp": {
                    "name": "Jumpgate test IdP",
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"{self.base}/sso/redirect", BINDING_HTTP_REDIRECT),
                            (f"{self.base}/sso/post", BINDING_HTTP_POST),
                        ],
                        "single_logout_service": [
                            (f"{self.base}/slo/redirect", BINDING_HTTP_REDIRECT),
                        ],
                    },
                    "policy": {
                        "default": {
                            "lifetime": {"seconds": lifetime},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_BASIC,
                        }
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "sign_response": True,
                    "sign_assertion": True,
                    "want_authn_requests_signed": self.want_signed,
                }
            },
            "key_file": key,
            "cert_file": cert,
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "metadata": {"inline": [sp_xml, other_sp_xml]},
            "allow_unknown_attributes": True,
            # pysaml2 signs with SHA-1 unless told otherwise; real IdPs use SHA-256.
            "signing_algorithm": SHA256_SIGNATURE,
            "digest_algorithm": SHA256_DIGEST,
        }
        config = IdPConfig()
        config.load(conf)
        return config

    @staticmethod
    def sp_entity_id(sp_xml):
        marker = 'entityID="'
        start = sp_xml.index(marker) + len(marker)
        return sp_xml[start:sp_xml.index('"', start)]

    def server(self, signer="trusted", lifetime=300):
        """A pysaml2 IdP signing with `signer`'s key and issuing assertions valid for `lifetime`
        seconds, made on first use."""
        with self.lock:
            if self.sp_xml is None:
                if os.path.exists(self.sp_metadata):
                    with open(self.sp_metadata, encoding="utf-8") as f:
                        self.sp_xml = f.read()
                else:
                    with urllib.request.urlopen(self.sp_metadata, timeout=10) as r:
                        self.sp_xml = r.read().decode("utf-8")
                self.sp = self.sp_entity_id(self.sp_xml)
            if (signer, lifetime) not in self.servers:
                self.servers[(signer, lifetime)] = Server(
                    config=self.config(signer, lifetime, self.sp_xml)
                )
            return self.servers[(signer, lifetime)]

    def metadata(self):
        """The IdP's own metadata, which needs no SP: built from a configuration without one."""
        key, cert = self.keys["trusted"]
        config = IdPConfig()
        config.load({
            "entityid": self.entity_id,
            "service": {"idp": {"endpoints": {
                "single_sign_on_service": [
                    (f"{self.base}/sso/redirect", BINDING_HTTP_REDIRECT),
                    (f"{self.base}/sso/post", BINDING_HTTP_POST),
                ],
                "single_logout_service": [(f"{self.base}/slo/redirect", BINDING_HTTP_REDIRECT)],
            }, "name_id_format": [NAMEID_FORMAT_EMAILADDRESS]}},
            "key_file": key,
            "cert_file": cert,
            "xmlsec_binary": "/usr/bin/xmlsec1",
        })
        return create_metadata_string(None, config=config).decode("utf-8")

    def response_form(self, fields, in_response_to, acs_url, relay_state):
        """An auto-submitting HTML form that posts a signed Response to the SP."""
        server = self.server(
            "rogue" if fields.get("signer") == "rogue" else "trusted",
            int(fields.get("lifetime") or 300),
        )
        audience = OTHER_SP if fields.get("audience") == "other" else self.sp
        if not acs_url:
            _, acs_url = server.pick_binding(
                "assertion_consumer_service", bindings=[BINDING_HTTP_POST], entity_id=self.sp
            )
        destination = fields.get("destination") or acs_url
        email = fields.get("email", "")
        identity = {"email": [email]}
        for field, attribute in (("username", "username"), ("name", "displayName")):
            if fields.get(field):
                identity[attribute] = [fields[field]]
        if fields.get("groups"):
            identity["groups"] = fields["groups"].split(",")
        response = server.create_authn_response(
            identity,
            in_response_to,
            destination,
            audience,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": PASSWORD, "authn_auth": self.entity_id},
            sign_response=True,
            sign_assertion=True,
            sign_alg=SHA1_SIGNATURE if fields.get("weak") else SHA256_SIGNATURE,
            digest_alg=SHA1_DIGEST if fields.get("weak") else SHA256_DIGEST,
        )
        info = server.apply_binding(
            BINDING_HTTP_POST, str(response), destination, relay_state, response=True
        )
        return info["data"]


    def logout_request(self, fields):
        """An IdP-initiated LogoutRequest for fields["email"]: ("redirect", where to send the
        browser) or, with binding=post, ("post", a page that posts it with an enveloped XML
        signature)."""
        server = self.server("rogue" if fields.get("signer") == "rogue" else "trusted")
        post = fields.get("binding") == "post"
        binding = BINDING_HTTP_POST if post else BINDING_HTTP_REDIRECT
        _, destination = server.pick_binding(
            "single_logout_service", [binding], "spsso", entity_id=self.sp
        )
        signed = fields.get("unsigned") != "1"
        # A destination knob changes only what the request says, not where it goes; "none"
        # leaves the Destination attribute out.
        said = fields.get("destination") or destination
        _, request = server.create_logout_request(
            None if said == "none" else said,
            self.sp,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=fields.get("email", "")),
            session_indexes=[fields["session_index"]] if fields.get("session_index") else None,
            sign=post and signed, sign_alg=SHA256_SIGNATURE, digest_alg=SHA256_DIGEST,
        )
        relay = fields.get("relay", "idp-relay")
        if post:
            info = server.apply_binding(BINDING_HTTP_POST, str(request), destination, relay)
            return "post", info["data"]
        info = server.apply_binding(
            BINDING_HTTP_REDIRECT, str(request), destination, relay,
            sign=signed, sigalg=SHA256_SIGNATURE,
        )
        return "redirect", dict(info["headers"])["Location"]

    def logout_from_sp(self, fields):
        """Takes the SP's LogoutRequest; returns where to send the browser with the answer."""
        server = self.server()
        request = server.parse_logout_request(
            fields["SAMLRequest"], BINDING_HTTP_REDIRECT,
            relay_state=fields.get("RelayState"),
            sigalg=fields.get("SigAlg"), signature=fields.get("Signature"),
        )
        message = request.message
        indexes = ",".join(i.text for i in (message.session_index or []))
        with self.lock:
            self.slo_log.append(
                f"request {message.name_id.text} index={indexes} "
                f"signed={'Signature' in fields}"
            )
        destination = server.response_args(message, [BINDING_HTTP_REDIRECT])["destination"]
        response = server.create_logout_response(message, [BINDING_HTTP_REDIRECT])
        info = server.apply_binding(
            BINDING_HTTP_REDIRECT, str(response), destination,
            fields.get("RelayState", ""), response=True, sign=True, sigalg=SHA256_SIGNATURE,
        )
        return dict(info["headers"])["Location"]

    def answer_from_sp(self, fields):
        """Takes the SP's LogoutResponse to our request and notes its status."""
        response = self.server().parse_logout_request_response(
            fields["SAMLResponse"], BINDING_HTTP_REDIRECT
        )
        status = response.response.status.status_code.value
        with self.lock:
            self.slo_log.append(f"response {response.response.in_response_to} {status}")


def page(title, body):
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def make_handler(idp):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            sys.stderr.write("saml_idp: " + (fmt % args) + "\n")

        def send(self, status, body, content_type="text/html; charset=utf-8"):
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def redirect(self, location):
            self.send_response(303)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def fields(self):
            url = urllib.parse.urlsplit(self.path)
            found = dict(urllib.parse.parse_qsl(url.query))
            if self.command == "POST":
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("utf-8")
                found.update(urllib.parse.parse_qsl(body))
            return url.path, found

        def do_GET(self):
            self.route()

        def do_POST(self):
            self.route()

        def route(self):
            try:
                path, fields = self.fields()
                if path == "/metadata":
                    self.send(200, idp.metadata(), "application/samlmetadata+xml")
                elif path in ("/sso/redirect", "/sso/post"):
                    self.sign_in_form(path, fields)
                elif path == "/sso/login":
                    self.sign_in(fields)
                elif path == "/portal":
                    self.send(200, page("Test IdP portal", (
                        "<form method='get' action='/launch'><label>Email "
                        "<input name='email' type='email'></label>"
                        "<button type='submit'>Open Jumpgate</button></form>")))
                elif path == "/launch":
                    self.send(200, idp.response_form(fields, None, None, fields.get("relay", "")))
                elif path == "/slo/redirect" and "SAMLRequest" in fields:
                    self.redirect(idp.logout_from_sp(fields))
                elif path == "/slo/redirect":
                    if "SAMLResponse" in fields:
                        idp.answer_from_sp(fields)
                    self.send(200, page("Signed out", "<p>You are signed out of the test IdP.</p>"))
                elif path == "/slo/initiate":
                    how, where = idp.logout_request(fields)
                    if how == "post":
                        self.send(200, where)
                    else:
                        self.redirect(where)
                elif path == "/slo/log":
                    with idp.lock:
                        self.send(200, "".join(f"{line}\n" for line in idp.slo_log), "text/plain")
                else:
                    self.send(404, page("Not found", ""))
            except Exception as e:  # a test helper: say what broke, keep serving
                sys.stderr.write(f"saml_idp: error: {e!r}\n")
                self.send(500, page("IdP error", f"<pre>{html.escape(repr(e))}</pre>"))

        def sign_in_form(self, path, fields):
            binding = BINDING_HTTP_REDIRECT if path == "/sso/redirect" else BINDING_HTTP_POST
            server = idp.server()
            request = server.parse_authn_request(
                fields["SAMLRequest"],
                binding,
                relay_state=fields.get("RelayState"),
                sigalg=fields.get("SigAlg"),
                signature=fields.get("Signature"),
            )
            message = request.message
            key = os.urandom(12).hex()
            with idp.lock:
                idp.pending[key] = (
                    message.id,
                    message.assertion_consumer_service_url,
                    fields.get("RelayState", ""),
                )
            self.send(200, page("Test IdP sign-in", (
                "<form method='post' action='/sso/login'>"
                f"<input type='hidden' name='key' value='{key}'>"
                "<label>Email <input name='email' type='email' autofocus></label>"
                "<button type='submit'>Sign in</button></form>")))

        def sign_in(self, fields):
            with idp.lock:
                pending = idp.pending.pop(fields.get("key", ""), None)
            if pending is None:
                self.send(400, page("Unknown sign-in", "<p>Start again from the application.</p>"))
                return
            request_id, acs_url, relay_state = pending
            self.send(200, idp.response_form(fields, request_id, acs_url, relay_state))

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sp-metadata", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--entity-id")
    parser.add_argument("--clock-offset")
    parser.add_argument("--want-signed-requests", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    if not args.host.startswith("127."):
        sys.exit("saml_idp: --host must be a loopback address (127.x.y.z)")
    if args.clock_offset and "FAKETIME" not in os.environ:
        # Re-run this same process (same PID, so whoever started it can stop it) with
        # libfaketime preloaded, rather than under the `faketime` wrapper, which forks.
        found = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
        if not found:
            sys.exit("saml_idp: libfaketime is missing (Debian package faketime)")
        env = dict(os.environ, FAKETIME=args.clock_offset, LD_PRELOAD=found[0])
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    base = f"http://{args.host}:{args.port}"
    idp = Idp(
        base,
        args.entity_id or f"{base}/metadata",
        args.sp_metadata,
        args.dir,
        want_signed=args.want_signed_requests,
    )
    httpd = ThreadingHTTPServer((args.host, args.port), make_handler(idp))
    print(f"ready {base}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
