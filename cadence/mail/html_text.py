"""HTML to plain text, optionally without the quoted history that mail clients embed.

Clients mark quoted history in HTML in a few well-known ways:

* a container holding the quote: ``<blockquote>`` (Apple Mail, Thunderbird, Gmail ...),
  ``div.gmail_quote``, ``div.yahoo_quoted``, ``div.moz-cite-prefix`` (Thunderbird's "On ...
  wrote:" line), ``div.OutlookMessageHeader``;
* a marker after which everything is history: Outlook's ``#divRplyFwdMsg`` and
  ``#appendonsend``, Outlook for Mac's ``#OLK_SRC_BODY_SECTION``, Hotmail's
  ``hr#stopSpelling``, and Outlook 2007/2010's header block (a ``div`` whose top border is the
  thin grey line above "From: ... Sent: ...").

The parser is the standard library's tolerant ``html.parser``; it never raises on bad markup.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK = {
    "p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "pre", "hr", "section", "article", "header", "footer", "address", "dd", "dt",
}
_SKIP = {"script", "style", "head", "title", "xml", "o:p-hidden"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr", "source"}

_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "outlookmessageheader",
                  "gmail_extra_quote", "zmail_extra", "protonmail_quote")
_CUT_IDS = ("divrplyfwdmsg", "appendonsend", "olk_src_body_section", "stopspelling",
            "mail-editor-reference-message-container", "ms-outlook-mobile-reference-message")
_OUTLOOK_BORDER = re.compile(r"border-top:\s*solid\s*#(?:b5c4df|e1e1e1)", re.I)


class _Extractor(HTMLParser):
    def __init__(self, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_quotes = drop_quotes
        self.out: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, opened a quote region)
        self.skip_depth = 0
        self.quote_depth = 0
        self.cut = False

    def _is_quote(self, tag: str, attrs: dict[str, str]) -> bool:
        if tag == "blockquote":
            return True
        classes = attrs.get("class", "").lower().split()
        return any(c in classes for c in _QUOTE_CLASSES)

    def _is_cut(self, tag: str, attrs: dict[str, str]) -> bool:
        ident = attrs.get("id", "").lower()
        if any(ident.startswith(c) for c in _CUT_IDS):
            return True
        return tag == "div" and bool(_OUTLOOK_BORDER.search(attrs.get("style", "")))

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        attrs = {k.lower(): (v or "") for k, v in attrs_list}
        if self.drop_quotes and not self.cut and self._is_cut(tag, attrs):
            self.cut = True
        opened = False
        if tag in _SKIP:
            self.skip_depth += 1
        elif self.drop_quotes and self._is_quote(tag, attrs):
            self.quote_depth += 1
            opened = True
        if tag == "br":
            self._emit("\n")
        elif tag in _BLOCK:
            self._newline()
        if tag not in _VOID:
            self.stack.append((tag, opened))
            if len(self.stack) > 2000:  # pathological nesting: stop tracking structure
                self.stack = self.stack[-1000:]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        tag = tag.lower()
        if tag not in _VOID and self.stack and self.stack[-1][0] == tag:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _VOID:
            return
        # close up to the matching open tag (tolerates unclosed children)
        for i in range(len(self.stack) - 1, max(-1, len(self.stack) - 50), -1):
            if self.stack[i][0] == tag:
                for name, opened in self.stack[i:]:
                    if name in _SKIP:
                        self.skip_depth = max(0, self.skip_depth - 1)
                    if opened:
                        self.quote_depth = max(0, self.quote_depth - 1)
                del self.stack[i:]
                break
        if tag == "p":
            self._newline()
            self._emit("\n")
        elif tag in _BLOCK:
            self._newline()

    def _visible(self) -> bool:
        return not (self.skip_depth or self.quote_depth or self.cut)

    def _emit(self, text: str) -> None:
        if self._visible():
            self.out.append(text)

    def _newline(self) -> None:
        """End the current line once (nested blocks do not stack up blank lines)."""
        if self._visible() and self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._visible():
            return
        if self.out and self.out[-1].endswith("\n"):
            data = data.lstrip(" \t\r\n")  # source line breaks between blocks
            if not data:
                return
        self.out.append(data)


def html_to_text(markup: str, *, drop_quotes: bool = False) -> str:
    """Readable text of ``markup``; with ``drop_quotes`` the quoted history is left out."""
    parser = _Extractor(drop_quotes)
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # html.parser is tolerant, but an assertion on odd markup is possible
        pass
    text = "".join(parser.out).replace("\xa0", " ").replace("\r", "")
    text = html.unescape(text) if "&" in text else text
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    # collapse runs of blank lines
    out: list[str] = []
    for line in lines:
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    return "\n".join(out).strip()
