/// The console's stylesheet and its one small script, served from the binary.
enum ConsoleAssets {
    /// Dark text on light backgrounds (contrast ≥ 4.5:1), visible focus, one column on a phone.
    static let css = """
        *{box-sizing:border-box}
        body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f6f7f9}
        a{color:#0b5cad}
        a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #f0a500;outline-offset:2px}
        .skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px 8px;z-index:9}
        .top{display:flex;flex-wrap:wrap;gap:8px 24px;align-items:center;padding:8px 16px;background:#173b2f;color:#fff}
        .top a{color:#fff}.brand{font-weight:700;text-decoration:none;font-size:18px}
        .top nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:4px 16px;margin:0;padding:0}
        .switchers{display:flex;flex-wrap:wrap;gap:8px 16px;margin-left:auto}
        .switchers form{display:flex;gap:4px;align-items:center}.switchers label{font-size:14px}
        main{max-width:1100px;margin:0 auto;padding:16px}
        h1{font-size:26px;margin:8px 0 16px}h2{font-size:20px;margin:24px 0 8px}
        table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0 16px;display:block;overflow-x:auto}
        caption{text-align:left;font-weight:600;padding:4px 0}
        th,td{border-bottom:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
        .stack{display:flex;flex-direction:column;gap:6px;max-width:640px}
        .inline{display:inline-flex;flex-wrap:wrap;gap:6px;align-items:center;margin:2px 0}
        input,select,textarea{font:inherit;padding:6px 8px;border:1px solid #6e7781;border-radius:4px;background:#fff;color:#1b1f24;max-width:100%}
        button,.button{font:inherit;padding:6px 14px;border:1px solid #1f6f50;border-radius:4px;background:#1f6f50;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
        button.danger{background:#fff;color:#a40e26;border-color:#a40e26}
        .actions{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
        fieldset{border:1px solid #d0d7de;border-radius:6px;padding:12px;display:flex;flex-direction:column;gap:6px;background:#fff}
        .check{display:flex;gap:6px;align-items:center}
        .error,.field-error{color:#a40e26;font-weight:600;margin:2px 0}
        .flash{background:#dafbe1;border:1px solid #1a7f37;padding:8px;border-radius:4px}
        .muted,.hint{color:#57606a}.late{color:#a40e26}
        .narrow{max-width:420px;margin:40px auto}
        .card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px;margin:12px 0}
        code.token{word-break:break-all;background:#eef1f4;padding:2px 4px}
        .marks{display:inline-flex;gap:3px}
        .mark{display:inline-block;width:12px;height:12px;border-radius:2px;background:#8c959f}
        .status-completed{background:#1a7f37}.status-failed{background:#cf222e}.status-running{background:#0969da}
        .status-retrying{background:#bf8700}.status-cancelled{background:#6e7781}.status-starting{background:#8c959f}
        li.step{background:none;padding:4px 0}li.step.status-failed strong{color:#a40e26}li.step.status-completed strong{color:#1a7f37}
        .types{list-style:none;display:flex;flex-wrap:wrap;gap:8px;padding:0}
        dl.config{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}dl.config dd{margin:0;word-break:break-all}
        .visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
        svg.chart{width:100%;max-width:720px;height:auto;background:#fff;border:1px solid #d0d7de}
        @media (max-width:640px){.switchers{margin-left:0}th,td{padding:4px}h1{font-size:22px}}
        """

    /// Refreshes the run and backfill tables of an export's page every five seconds while it is
    /// open; every action works without it.
    static let javascript = """
        (function () {
          var section = document.querySelector('[data-refresh]');
          if (!section || !window.fetch) return;
          function refresh() {
            fetch(section.getAttribute('data-refresh'), {credentials: 'same-origin', headers: {'Accept': 'text/html'}})
              .then(function (response) { return response.ok ? response.text() : null; })
              .then(function (html) { if (html !== null) section.innerHTML = html; })
              .catch(function () {});
          }
          setInterval(refresh, 5000);
        })();
        """
}
