"""js/dom.js's formatting helpers, in the browser: the same text as the browser's own
locale functions (formatTime keeps its formatters, it does not build one per call)."""

from __future__ import annotations

from typing import Any


def test_format_time_says_what_the_locale_functions_say(page: Any) -> None:
    result = page.evaluate("""async () => {
        const { formatTime } = await import("/js/dom.js");
        const opts = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
        const now = Date.now() / 1000;
        const cases = [now, now - 60, now - 3 * 86400, 0, 1.5e9 + 0.25];
        const expected = (s, withDate) => {
            const d = new Date(s * 1000);
            const time = d.toLocaleTimeString([], opts);
            return d.toDateString() === new Date().toDateString() && !withDate
                ? time : `${d.toLocaleDateString()} ${time}`;
        };
        const rows = [];
        for (const s of cases) {
            rows.push([formatTime(s), expected(s, false)]);
            rows.push([formatTime(s, { withDate: true }), expected(s, true)]);
        }
        rows.push([formatTime(null), "\u2013"], [formatTime(undefined), "\u2013"],
                  [formatTime(NaN), "\u2013"], [formatTime(Infinity), "\u2013"]);
        return rows;
    }""")
    assert all(got == want for got, want in result), result
    # today's times are the time alone; other days carry their date
    assert ":" in result[0][0] and result[0][0] != result[1][0]
    assert result[4][0] == result[5][0] and len(result[4][0]) > len(result[0][0])
