/**
 * The console's style sheet, served as /console/assets/app.css. System fonts only: nothing is
 * loaded from anywhere else.
 *
 * @module
 */

/** The style sheet. */
export const APP_CSS: string = `
:root{--fg:#1b1f24;--muted:#5b6570;--bg:#f6f7f9;--card:#fff;--line:#d9dde3;--accent:#3b4bb8;
--ok:#1a7f37;--bad:#b42318;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
font-size:15px;color:var(--fg);background:var(--bg)}
*{box-sizing:border-box}body{margin:0}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;padding:.6rem 1rem;
background:#20263a;color:#fff}
.brand{font-weight:700;letter-spacing:.05em}
nav{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem;flex:1}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem;list-style:none;margin:0;padding:0;flex:1}
nav a{color:#dfe3f5;text-decoration:none;padding:.35rem .6rem;border-radius:6px;display:block}
nav a[aria-current=page],nav a:hover{background:#3a4466;color:#fff}
main{max-width:1200px;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem;
margin:.5rem 0 1rem}
.narrow{max-width:420px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:.75rem}
label{display:flex;flex-direction:column;gap:.25rem;font-size:.9rem;color:var(--muted);
margin-bottom:.6rem}
label.check{flex-direction:row;align-items:center;color:var(--fg)}
input,select,textarea{font:inherit;color:var(--fg);padding:.45rem .5rem;border:1px solid var(--line);
border-radius:6px;background:#fff;width:100%}
input[type=checkbox]{width:auto}
textarea{font-family:ui-monospace,Menlo,Consolas,monospace}
fieldset{border:1px solid var(--line);border-radius:6px;margin:0 0 .75rem}
details.more{border:1px solid var(--line);border-radius:6px;padding:.35rem .75rem;margin:0 0 .75rem}
details.more summary{cursor:pointer;color:var(--accent);font-weight:600;padding:.2rem 0}
details.more[open] summary{margin-bottom:.5rem}
button,.button{font:inherit;padding:.45rem .9rem;border-radius:6px;border:1px solid var(--accent);
background:var(--accent);color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#fff;color:var(--accent)}
button:disabled{opacity:.45;cursor:default}
button.danger{background:#fff;color:var(--bad);border-color:var(--bad)}
button.lock{background:transparent;border-color:#8d97c4}
.buttons{display:flex;gap:.5rem;flex-wrap:wrap}
form.inline{display:flex;gap:.35rem;flex-wrap:wrap;align-items:center}
form.inline input{width:10rem}
td.actions{display:flex;gap:.35rem;flex-wrap:wrap;align-items:center}
.scroll{overflow:auto;max-width:100%;background:var(--card);border:1px solid var(--line);
border-radius:8px}
.results{max-height:60vh}
#q-table tbody.batch{content-visibility:auto;contain-intrinsic-size:auto 20000px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid var(--line);vertical-align:top;
white-space:nowrap}
thead th{position:sticky;top:0;background:#eef0f4}
tr.fail td{color:var(--bad)}td.null{color:var(--muted);font-style:italic}
.flash{border-radius:8px;padding:.6rem 1rem;margin:0 0 1rem;border:1px solid var(--line);
background:var(--card)}
.flash.ok{border-color:var(--ok)}.flash.error{border-color:var(--bad);color:var(--bad)}
.flash.secret,.flash.codes{border-color:#b7791f;background:#fffbeb}
.flash p{margin:0 0 .4rem}
pre.copyable{background:#fff;border:1px dashed var(--line);padding:.5rem;overflow:auto;
white-space:pre-wrap;word-break:break-all}
.status{font-weight:600}.status.ok,p.ok{color:var(--ok)}.status.bad,p.bad{color:var(--bad)}
.empty{color:var(--muted)}
.qr svg{width:220px;height:220px;background:#fff}.qr{margin:0}
code{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}
.filters label{margin:0;flex:1 1 140px}
@media (max-width:600px){main{padding:.6rem}header{padding:.5rem}form.inline input{width:100%}
table.profiles thead{display:none}
table.profiles tr{display:block;padding:.4rem 0;border-bottom:1px solid var(--line)}
table.profiles td{display:block;border:0;padding:.1rem .6rem;white-space:normal;word-break:break-all}
table.profiles td[data-label]::before{content:attr(data-label) ": ";color:var(--muted)}
table.profiles td.actions{display:flex;padding-top:.3rem}}
`;
