#!/usr/bin/env python3
"""Independent reference decoding of a MIME corpus, for mcp/corpus_test.go.

Usage:
    python3 bench/corpus_reference.py CORPUS_DIR [FILE...] > out.jsonl

Without FILE arguments every *.eml under CORPUS_DIR (recursive, sorted) is
read; with them, only those (paths absolute or relative to CORPUS_DIR). For
each message one JSON object is printed on its own line, decoded by Python's
email package with policy=email.policy.default:

    file          path relative to CORPUS_DIR
    subject       decoded Subject ('' when absent)
    from          decoded From, str(msg['from']) best effort ('' when absent)
    has_date      a Date header is present and parses to a datetime
    body          the text a reader sees: the first text/plain body part, else
                  the text/html one converted to text (crudely)
    body_type     content type of that part ('' when there is none)
    body_part     that part's filename, content_type and hashes (as for
                  attachments), to recognise it when a client lists it as an
                  attachment
    body_error    why get_content() failed, when it did (the body is then the
                  payload decoded with errors='replace')
    attachments   every leaf part other than the body part (and other than a
                  multipart whose boundary is unusable), in order, each with
                  filename, content_type, size and sha256 of the decoded bytes,
                  sha256_lf (the same bytes with CRLF turned into LF),
                  body_like (an inline text/plain or text/html part without a
                  filename: another body, not something a reader would call an
                  attachment), hashed_as ("decoded", "serialized" for message/*
                  parts: part.get_payload()[0].as_bytes(), or "raw" when the
                  payload could not be decoded), sha256_compat32_lf (message/*
                  only: the part re-serialized by policy.compat32, which keeps
                  the header text as sent, CRLF turned into LF), sha256_raw
                  and sha256_raw_lf (message/* only: the part's body as it is
                  in the file, found by splitting the raw bytes at the
                  boundaries the parser saw, transfer encoding undone; absent
                  when that split disagrees with the parser), sha256_norm
                  (text/* and message/* only: those bytes, else the compat32
                  serialization, else the decoded text, with LF line ends, no
                  trailing blanks on lines and no empty lines at either end:
                  quoted-printable decoders differ on trailing blanks, and
                  servers on the line end after a last header), defects, and
                  decode_error when decoding raised or registered a defect such
                  as InvalidBase64PaddingDefect
    tnef          a part is application/ms-tnef or named winmail.dat
    uuencoded     file names of "begin NNN name" blocks in the text parts
    subject_8bit  the raw Subject has 8-bit bytes that are not UTF-8 (the
                  reference's subject is then a guess, like anyone's)
    error         set (with as much of the rest as could be read) when reading
                  the file failed; the script never stops on a bad message

Standard library only.
"""

import email
import email.header
import email.message
import email.policy
import base64
import hashlib
import html
import html.parser
import json
import os
import quopri
import re
import sys

UUE_BEGIN = re.compile(r"^begin [0-7]{3,4} (.+?)\s*$", re.M)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def lf(b):
    return b.replace(b"\r\n", b"\n")


def norm(b):
    """LF line ends, no trailing blanks on lines, no leading or trailing empty lines."""
    return b"\n".join(line.rstrip(b" \t\r") for line in lf(b).split(b"\n")).strip(b"\n")


class _Text(html.parser.HTMLParser):
    """Crude HTML to text: drops script/style/head, breaks lines at blocks."""

    BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre", "hr"}
    SKIP = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def html_to_text(s):
    p = _Text()
    try:
        p.feed(s)
        p.close()
    except Exception:  # noqa: BLE001 - crude by design
        return html.unescape(re.sub(r"<[^>]*>", " ", s))
    text = "".join(p.out)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r"\n\s*\n\s*", "\n\n", text)
    return text.strip()


def header_str(msg, name):
    """Decoded header, '' when absent, never raises."""
    try:
        v = msg[name]
        if v is None:
            return ""
        return str(v)
    except Exception:  # noqa: BLE001
        pass
    for k, v in msg.raw_items():
        if k.lower() == name.lower():
            try:
                return str(email.header.make_header(email.header.decode_header(v)))
            except Exception:  # noqa: BLE001
                return str(v).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return ""


def raw_8bit_not_utf8(msg, name):
    for k, v in msg.raw_items():
        if k.lower() != name.lower():
            continue
        raw = str(v).encode("utf-8", "surrogateescape")
        if any(c >= 0x80 for c in raw):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return True
    return False


def clean(s):
    """Strings for JSON: lone surrogates (undecodable bytes) become U+FFFD."""
    if not isinstance(s, str):
        return s
    return s.encode("utf-8", "replace").decode("utf-8")


def leaves(part, path=()):
    """Leaf parts in order; message/* parts are leaves (not entered)."""
    ctype = part.get_content_type()
    if ctype.startswith("message/"):
        yield path, part
        return
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for i, sub in enumerate(payload):
                yield from leaves(sub, path + (i,))
            return
    yield path, part


HEADER_END = re.compile(rb"\r?\n\r?\n")


def raw_body(entity):
    """The body of one entity's raw bytes (after the first empty line)."""
    if entity.startswith(b"\n") or entity.startswith(b"\r\n"):
        return entity[entity.index(b"\n") + 1:]
    m = HEADER_END.search(entity)
    return entity[m.end():] if m else b""


def raw_children(body, boundary):
    """Raw sub-entities of a multipart body, split the way RFC 2046 says."""
    delim = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary.encode("utf-8", "surrogateescape")) +
                       rb"(--)?[ \t]*(?:\r?\n|$)")
    out, start = [], None
    for m in delim.finditer(body):
        if start is not None:
            out.append(body[start:m.start()])
        if m.group(1):
            start = None
            break
        start = m.end()
    if start is not None:
        out.append(body[start:])
    return out


def raw_part(data, msg, path):
    """Raw bytes (headers and body) of the part at path, or None when the raw
    split does not agree with the parser's."""
    entity, part = data, msg
    for i in path:
        boundary = part.get_boundary()
        payload = part.get_payload()
        if not boundary or not isinstance(payload, list):
            return None
        kids = raw_children(raw_body(entity), boundary)
        if len(kids) != len(payload):
            return None
        entity, part = kids[i], payload[i]
    return entity


def decode_cte(body, cte):
    cte = (cte or "").strip().lower()
    if cte == "base64":
        return base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", body) + b"===")
    if cte == "quoted-printable":
        return quopri.decodestring(body)
    return body


def part_bytes(part):
    """(bytes, hashed_as, error) for one leaf."""
    ctype = part.get_content_type()
    payload = part.get_payload()
    if ctype.startswith("message/") and isinstance(payload, list):
        try:
            if len(payload) == 1 and isinstance(payload[0], email.message.Message):
                return payload[0].as_bytes(), "serialized", None
            return b"".join(m.as_bytes() for m in payload), "serialized", None
        except Exception as e:  # noqa: BLE001
            return b"", "serialized", "serialize: %s: %s" % (type(e).__name__, e)
    try:
        b = part.get_payload(decode=True)
        if b is None:
            b = b""
        cte = str(part.get("content-transfer-encoding", ""))
        if cte.lower() != cte.strip().lower() and cte.strip().lower() in ("base64", "quoted-printable"):
            # get_payload compares the header unstripped: "base64 " stays encoded.
            return decode_cte(b, cte), "decoded", None
        return b, "decoded", None
    except Exception as e:  # noqa: BLE001
        raw = payload if isinstance(payload, str) else ""
        return raw.encode("utf-8", "surrogateescape"), "raw", "decode: %s: %s" % (type(e).__name__, e)


def decode_text(part):
    """Text of a text part: get_content(), else a forgiving decode."""
    try:
        return part.get_content(), None
    except Exception as e:  # noqa: BLE001
        err = "%s: %s" % (type(e).__name__, e)
    try:
        b = part.get_payload(decode=True) or b""
    except Exception:  # noqa: BLE001
        p = part.get_payload()
        b = p.encode("utf-8", "surrogateescape") if isinstance(p, str) else b""
    cs = part.get_content_charset() or "utf-8"
    try:
        return b.decode(cs, errors="replace"), err
    except LookupError:
        return b.decode("utf-8", errors="replace"), err


def compat32_leaves(data):
    try:
        m = email.message_from_bytes(data, policy=email.policy.compat32)
        return {path: p for path, p in leaves(m)}
    except Exception:  # noqa: BLE001
        return {}


def reference(path, rel, out):
    out.update({"file": rel, "subject": "", "from": "", "has_date": False, "body": "", "body_type": "",
           "attachments": [], "tnef": False, "uuencoded": [], "subject_8bit": False})
    with open(path, "rb") as f:
        data = f.read()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    out["subject"] = clean(header_str(msg, "subject"))
    out["from"] = clean(header_str(msg, "from"))
    out["subject_8bit"] = raw_8bit_not_utf8(msg, "subject")
    try:
        d = msg["date"]
        out["has_date"] = d is not None and getattr(d, "datetime", None) is not None
    except Exception:  # noqa: BLE001
        out["has_date"] = False

    body = None
    try:
        body = msg.get_body(preferencelist=("plain", "html"))
    except Exception as e:  # noqa: BLE001
        out["body_error"] = "get_body: %s: %s" % (type(e).__name__, e)
    if body is not None:
        out["body_type"] = body.get_content_type()
        text, err = decode_text(body)
        if err:
            out["body_error"] = err
        if not isinstance(text, str):
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        if out["body_type"] == "text/html":
            text = html_to_text(text)
        out["body"] = clean(text)
        try:
            bb, _, _ = part_bytes(body)
            out["body_part"] = {"filename": clean(body.get_filename() or ""), "content_type": out["body_type"],
                                "sha256": sha(bb), "sha256_lf": sha(lf(bb)), "sha256_norm": sha(norm(bb))}
        except Exception:  # noqa: BLE001
            pass

    c32 = None
    for p, part in leaves(msg):
        ctype = part.get_content_type()
        try:
            filename = part.get_filename() or ""
        except Exception:  # noqa: BLE001
            filename = ""
        if ctype == "application/ms-tnef" or filename.lower() == "winmail.dat":
            out["tnef"] = True
        if ctype.startswith("text/"):
            try:
                t, _ = decode_text(part)
                if isinstance(t, str):
                    out["uuencoded"] += [clean(n) for n in UUE_BEGIN.findall(t)]
            except Exception:  # noqa: BLE001
                pass
        if part is body or ctype.startswith("multipart/"):
            continue  # a multipart without a usable boundary is text to Python, not a part
        b, how, err = part_bytes(part)
        disp = part.get_content_disposition()
        a = {"filename": clean(filename), "content_type": ctype, "size": len(b), "sha256": sha(b), "sha256_lf": sha(lf(b)),
             "hashed_as": how, "body_like": ctype in ("text/plain", "text/html") and disp != "attachment" and not filename}
        if ctype.startswith("message/"):
            if c32 is None:
                c32 = compat32_leaves(data)
            q = c32.get(p)
            if q is not None:
                try:
                    qp = q.get_payload()
                    qb = b"".join(m.as_bytes() for m in qp) if isinstance(qp, list) else (q.get_payload(decode=True) or b"")
                    a["sha256_compat32_lf"] = sha(lf(qb))
                    a["sha256_norm"] = sha(norm(qb))
                except Exception:  # noqa: BLE001
                    pass
            try:
                raw = raw_part(data, msg, p)
                if raw is not None:
                    rb = decode_cte(raw_body(raw), part.get("content-transfer-encoding"))
                    a["sha256_raw"], a["sha256_raw_lf"], a["sha256_norm"] = sha(rb), sha(lf(rb)), sha(norm(rb))
            except Exception:  # noqa: BLE001
                pass
        elif ctype.startswith("text/"):
            a["sha256_norm"] = sha(norm(b))
        defects = [type(d).__name__ for d in part.defects]
        if defects:
            a["defects"] = defects
        bad = [d for d in defects if d.startswith("InvalidBase64") or "Decode" in d]
        if err or bad:
            a["decode_error"] = err or ", ".join(bad)
        out["attachments"].append(a)


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    root = argv[1]
    if len(argv) > 2:
        files = [f if os.path.isabs(f) else os.path.join(root, f) for f in argv[2:]]
    else:
        files = []
        for d, _, names in os.walk(root):
            files += [os.path.join(d, n) for n in names if n.endswith(".eml")]
        files.sort()
    w = sys.stdout
    for path in files:
        rel = os.path.relpath(path, root)
        rec = {"file": rel}
        try:
            reference(path, rel, rec)
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the run
            rec["error"] = "%s: %s" % (type(e).__name__, e)
        try:
            line = json.dumps(rec, ensure_ascii=False)
        except Exception as e:  # noqa: BLE001
            line = json.dumps({"file": rel, "error": "json: %s" % e})
        w.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
