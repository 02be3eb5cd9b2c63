import Mustache

/// The console's pages as Mustache templates, compiled into the binary (no files at run time).
/// Every page extends `layout`; `{{x}}` escapes HTML, so values a user typed never become markup.
enum ConsoleTemplates {
    static let all: [String: String] = [
        "layout": layout, "error": error, "login": login, "signup": signup, "organization": organization, "members": members,
        "keys": keys, "key_created": keyCreated, "exports": exports, "export_types": exportTypes, "export_form": exportForm,
        "export": export, "runs": runs, "backfill": backfill, "logs": logs,
    ]

    /// The library of every template; a template that does not parse is a defect caught by any test.
    static func library() -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in all {
            do {
                try library.register(text, named: name)
            } catch {
                preconditionFailure("console template \(name) does not parse: \(error)")
            }
        }
        return library
    }

    static let csrf = #"<input type="hidden" name="csrf_token" value="{{csrf}}">"#

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Hedgerow</title>
        <link rel="stylesheet" href="/static/console.css">
        <script src="/static/console.js" defer></script>
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        {{#me}}
        <header class="top">
          <a class="brand" href="/">Hedgerow</a>
          <nav aria-label="Main">
            <ul>
              {{#team}}<li><a href="/project/{{id}}/batch_exports">Batch exports</a></li>{{/team}}
              <li><a href="/organization">Organization</a></li>
              <li><a href="/organization/members">Members</a></li>
              <li><a href="/me/keys">Personal API keys</a></li>
            </ul>
          </nav>
          <div class="switchers">
            <form method="post" action="/organization/switch">
              \(csrf)
              <label for="switch-organization">Organization</label>
              <select id="switch-organization" name="organization">
                {{#organizations}}<option value="{{id}}"{{#current}} selected{{/current}}>{{name}}</option>{{/organizations}}
              </select>
              <button type="submit">Switch</button>
            </form>
            {{#has_environments}}
            <form method="post" action="/environment/switch">
              \(csrf)
              <label for="switch-environment">Project</label>
              <select id="switch-environment" name="team">
                {{#environments}}<option value="{{id}}"{{#current}} selected{{/current}}>{{label}}</option>{{/environments}}
              </select>
              <button type="submit">Switch</button>
            </form>
            {{/has_environments}}
            <form method="post" action="/logout">
              \(csrf)
              <span class="who">{{email}}</span> <button type="submit">Sign out</button>
            </form>
          </div>
        </header>
        {{/me}}
        <main id="main" tabindex="-1">
        {{#flash}}<p class="flash" role="status">{{.}}</p>{{/flash}}
        {{$body}}{{/body}}
        </main>
        </body>
        </html>
        """

    static let error = """
        {{<layout}}{{$body}}
        <h1>{{heading}}</h1>
        <p class="error" role="alert" id="page-error">{{detail}}</p>
        <p><a href="/">Back to the console</a></p>
        {{/body}}{{/layout}}
        """

    static let login = """
        {{<layout}}{{$body}}
        <section class="narrow">
        <h1>Sign in to Hedgerow</h1>
        {{#error}}<p class="error" role="alert" id="login-error">{{.}}</p>{{/error}}
        <form method="post" action="/login" class="stack">
          <input type="hidden" name="csrf_token" value="{{form_csrf}}">
          <input type="hidden" name="next" value="{{next}}">
          <label for="email">Email</label>
          <input id="email" name="email" type="email" autocomplete="username" required value="{{email}}">
          <label for="password">Password</label>
          <input id="password" name="password" type="password" autocomplete="current-password" required>
          <button type="submit" id="sign-in">Sign in</button>
        </form>
        </section>
        {{/body}}{{/layout}}
        """

    static let signup = """
        {{<layout}}{{$body}}
        <section class="narrow">
        <h1>You've been invited to join {{organization_name}}</h1>
        {{#error}}<p class="error" role="alert" id="signup-error">{{.}}</p>{{/error}}
        {{#invite}}
        <p>The invite is for <strong>{{target_email}}</strong>, as {{level_name}}{{#created_by}}, from {{email}}{{/created_by}}.</p>
        {{#message}}<blockquote>{{.}}</blockquote>{{/message}}
        {{/invite}}
        {{#signed_in}}
        <form method="post" action="/signup/{{invite_id}}" class="stack">
          <input type="hidden" name="csrf_token" value="{{form_csrf}}">
          <button type="submit" id="accept-invite">Join {{organization_name}} as {{signed_in}}</button>
        </form>
        {{/signed_in}}
        {{^signed_in}}
        <form method="post" action="/signup/{{invite_id}}" class="stack">
          <input type="hidden" name="csrf_token" value="{{form_csrf}}">
          <label for="first_name">First name</label>
          <input id="first_name" name="first_name" required maxlength="150" value="{{first_name}}" autocomplete="given-name">
          <label for="password">Password (at least 8 characters)</label>
          <input id="password" name="password" type="password" minlength="8" required autocomplete="new-password">
          <button type="submit" id="accept-invite">Create my account and join</button>
        </form>
        <p>Have an account for this address already? <a href="/login?next=/signup/{{invite_id}}">Sign in</a> first.</p>
        {{/signed_in}}
        </section>
        {{/body}}{{/layout}}
        """

    static let organization = """
        {{<layout}}{{$body}}
        <h1>Organization: {{organization.name}}</h1>
        {{#error}}<p class="error" role="alert">{{.}}</p>{{/error}}
        <section>
        <h2>Name</h2>
        <form method="post" action="/organization/rename" class="inline">
          \(csrf)
          <label for="organization-name">Organization name</label>
          <input id="organization-name" name="name" required maxlength="64" value="{{organization.name}}">
          <button type="submit">Rename</button>
        </form>
        </section>
        <section>
        <h2>Projects and environments</h2>
        {{#projects}}
        <article class="card">
          <h3>{{name}} <span class="muted">(project {{id}})</span></h3>
          <form method="post" action="/project/{{id}}/rename" class="inline">
            \(csrf)
            <label for="project-name-{{id}}">Project name</label>
            <input id="project-name-{{id}}" name="name" required maxlength="200" value="{{name}}">
            <button type="submit">Rename</button>
          </form>
          <table>
            <caption>Environments of {{name}}</caption>
            <thead><tr><th scope="col">Environment</th><th scope="col">ID</th><th scope="col">Project token</th></tr></thead>
            <tbody>
            {{#environments}}<tr><td>{{name}}</td><td>{{id}}</td><td><code class="token">{{api_token}}</code></td></tr>{{/environments}}
            </tbody>
          </table>
          <form method="post" action="/project/{{id}}/environments" class="inline">
            \(csrf)
            <label for="environment-name-{{id}}">New environment</label>
            <input id="environment-name-{{id}}" name="name" required maxlength="200" placeholder="Staging">
            <button type="submit">Create environment</button>
          </form>
        </article>
        {{/projects}}
        <form method="post" action="/organization/projects" class="inline">
          \(csrf)
          <label for="new-project">New project</label>
          <input id="new-project" name="name" required maxlength="200" placeholder="My project">
          <button type="submit">Create project</button>
        </form>
        </section>
        {{/body}}{{/layout}}
        """

    static let members = """
        {{<layout}}{{$body}}
        <h1>Members of {{organization_name}}</h1>
        {{#error}}<p class="error" role="alert" id="members-error">{{.}}</p>{{/error}}
        <table>
          <caption>Members</caption>
          <thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Level</th><th scope="col">Joined</th><th scope="col">Actions</th></tr></thead>
          <tbody>
          {{#members}}
          <tr>
            <td>{{email}}</td><td>{{name}}</td>
            <td>
              <form method="post" action="/organization/members/{{uuid}}/level" class="inline">
                \(csrf)
                <label class="visually-hidden" for="level-{{uuid}}">Level of {{email}}</label>
                <select id="level-{{uuid}}" name="level">
                  {{#levels}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/levels}}
                </select>
                <button type="submit">Change</button>
              </form>
            </td>
            <td>{{joined_at}}</td>
            <td>
              <form method="post" action="/organization/members/{{uuid}}/remove" class="inline">
                \(csrf)
                <button type="submit" class="danger">{{#is_me}}Leave{{/is_me}}{{^is_me}}Remove{{/is_me}}</button>
              </form>
            </td>
          </tr>
          {{/members}}
          </tbody>
        </table>
        <h2>Invites</h2>
        <form method="post" action="/organization/invites" class="inline" id="invite-form">
          \(csrf)
          <label for="invite-email">Email</label>
          <input id="invite-email" name="target_email" type="email" required>
          <label for="invite-first-name">First name</label>
          <input id="invite-first-name" name="first_name" maxlength="30">
          <label for="invite-level">Level</label>
          <select id="invite-level" name="level"><option value="1">member</option><option value="8">admin</option><option value="15">owner</option></select>
          <button type="submit" id="invite-submit">Invite</button>
        </form>
        <table id="invites">
          <caption>Pending invites (each link works for three days, for its address only)</caption>
          <thead><tr><th scope="col">Email</th><th scope="col">Level</th><th scope="col">Invite link</th><th scope="col">Status</th><th scope="col">Actions</th></tr></thead>
          <tbody>
          {{#invites}}
          <tr>
            <td>{{target_email}}</td><td>{{level_name}}</td>
            <td><a class="invite-link" href="{{link}}">{{link}}</a></td>
            <td>{{#is_expired}}expired{{/is_expired}}{{^is_expired}}pending{{/is_expired}}</td>
            <td>
              <form method="post" action="/organization/invites/{{id}}/delete" class="inline">
                \(csrf)
                <button type="submit" class="danger">Delete</button>
              </form>
            </td>
          </tr>
          {{/invites}}
          {{^invites}}<tr><td colspan="5">No pending invites.</td></tr>{{/invites}}
          </tbody>
        </table>
        {{/body}}{{/layout}}
        """

    static let keyFields = """
          <label for="key-label">Label</label>
          <input id="key-label" name="label" required maxlength="40" value="{{label}}">
          <fieldset>
            <legend>Scopes</legend>
            <label class="check"><input type="checkbox" name="scope" value="*" id="scope-all"> All access (<code>*</code>)</label>
            <table class="scopes">
              <thead><tr><th scope="col">Object</th><th scope="col">Read</th><th scope="col">Write</th></tr></thead>
              <tbody>
              {{#scope_objects}}
              <tr><th scope="row">{{name}}</th>
                <td><input type="checkbox" name="scope" value="{{name}}:read" aria-label="{{name}} read"></td>
                <td><input type="checkbox" name="scope" value="{{name}}:write" aria-label="{{name}} write"></td></tr>
              {{/scope_objects}}
              </tbody>
            </table>
          </fieldset>
          <label for="key-organizations">Limit to organizations (none selected: all)</label>
          <select id="key-organizations" name="scoped_organizations" multiple>
            {{#me.organizations}}<option value="{{id}}">{{name}}</option>{{/me.organizations}}
          </select>
          <label for="key-teams">Limit to projects (none selected: all)</label>
          <select id="key-teams" name="scoped_teams" multiple>
            {{#me.environments}}<option value="{{id}}">{{label}}</option>{{/me.environments}}
          </select>
        """

    static let keys = """
        {{<layout}}{{$body}}
        <h1>Personal API keys</h1>
        {{#error}}<p class="error" role="alert" id="key-error">{{.}}</p>{{/error}}
        <table id="keys">
          <caption>Your keys</caption>
          <thead><tr><th scope="col">Label</th><th scope="col">Key</th><th scope="col">Scopes</th><th scope="col">Limited to</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Actions</th></tr></thead>
          <tbody>
          {{#keys}}
          <tr>
            <td>
              <form method="post" action="/me/keys/{{id}}/label" class="inline">
                \(csrf)
                <label class="visually-hidden" for="label-{{id}}">Label</label>
                <input id="label-{{id}}" name="label" maxlength="40" required value="{{label}}">
                <button type="submit">Save</button>
              </form>
            </td>
            <td><code>{{mask_value}}</code></td><td>{{scopes}}</td><td>{{limits}}</td><td>{{created_at}}</td><td>{{last_used_at}}</td>
            <td>
              <form method="post" action="/me/keys/{{id}}/roll" class="inline">\(csrf)<button type="submit">Roll</button></form>
              <form method="post" action="/me/keys/{{id}}/delete" class="inline">\(csrf)<button type="submit" class="danger">Delete</button></form>
            </td>
          </tr>
          {{/keys}}
          {{^keys}}<tr><td colspan="7">No keys yet.</td></tr>{{/keys}}
          </tbody>
        </table>
        <h2>Create a key</h2>
        <form method="post" action="/me/keys" class="stack" id="key-form">
          \(csrf)
        \(keyFields)
          <button type="submit" id="create-key">Create key</button>
        </form>
        {{/body}}{{/layout}}
        """

    static let keyCreated = """
        {{<layout}}{{$body}}
        <h1>Key “{{label}}”</h1>
        <p role="status">Copy the key now: it is shown only this once.</p>
        <p><code id="new-key-value" class="token">{{value}}</code></p>
        <p>Try it: <code>curl -H "Authorization: Bearer {{value}}" {{base_url}}/api/users/@me/</code></p>
        <p><a href="/me/keys">Back to your keys</a></p>
        {{/body}}{{/layout}}
        """

    static let runMarks = """
        <span class="marks" aria-label="Latest runs">{{#marks}}<span class="mark status-{{status_class}}" title="{{status}} · {{interval}}" aria-label="{{status}}, {{interval}}"></span>{{/marks}}</span>
        """

    static let exports = """
        {{<layout}}{{$body}}
        <h1>Batch exports <span class="muted">· {{environment_name}}</span></h1>
        <p><a class="button" href="/project/{{team_id}}/batch_exports/new" id="new-export">New batch export</a></p>
        <table id="exports">
          <caption>Exports of this project (latest runs, oldest first)</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Destination</th><th scope="col">Model</th><th scope="col">Interval</th><th scope="col">State</th><th scope="col">Latest runs</th></tr></thead>
          <tbody>
          {{#exports}}
          <tr>
            <td><a href="/project/{{team_id}}/batch_exports/{{id}}">{{name}}</a></td><td>{{type}}</td><td>{{model}}</td><td>{{interval}}</td>
            <td>{{#paused}}Paused{{/paused}}{{^paused}}Active{{/paused}}{{#late}}<br><strong class="late">Late:</strong> <span class="late-reason">{{late}}</span>{{/late}}</td>
            <td>\(runMarks)</td>
          </tr>
          {{/exports}}
          {{^exports}}<tr><td colspan="6">No batch exports yet.</td></tr>{{/exports}}
          </tbody>
        </table>
        {{/body}}{{/layout}}
        """

    static let exportTypes = """
        {{<layout}}{{$body}}
        <h1>New batch export</h1>
        <p>Choose the destination.</p>
        <ul class="types">
          {{#types}}<li><a class="button" href="/project/{{team_id}}/batch_exports/new?type={{name}}">{{name}}</a></li>{{/types}}
        </ul>
        {{/body}}{{/layout}}
        """

    static let fieldError = #"{{#error}}<p class="field-error" id="error-{{id}}" role="alert">{{.}}</p>{{/error}}"#

    static let exportForm = """
        {{<layout}}{{$body}}
        <h1>{{heading}}</h1>
        {{#error}}<p class="error" role="alert" id="form-error">{{.}}</p>{{/error}}
        <form method="post" action="{{action}}" class="stack" id="export-form" novalidate>
          \(csrf)
          <input type="hidden" name="type" value="{{type}}">
          {{#top_fields}}
          <label for="{{id}}">{{label}}{{#required}} (required){{/required}}</label>
          {{#select}}<select id="{{id}}" name="{{name}}"{{#error}} aria-invalid="true" aria-describedby="error-{{id}}"{{/error}}>{{#options}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/options}}</select>{{/select}}
          {{^select}}<input id="{{id}}" name="{{name}}" value="{{value}}"{{#error}} aria-invalid="true" aria-describedby="error-{{id}}"{{/error}}>{{/select}}
          \(fieldError)
          {{/top_fields}}
          <fieldset>
            <legend>{{type}} destination</legend>
            {{#destination_error}}<p class="field-error" role="alert" id="destination-error">{{.}}</p>{{/destination_error}}
            {{#config_fields}}
            <label for="{{id}}">{{name}}{{#required}} (required){{/required}}{{#secret}} (secret: write-only{{#editing}}, blank keeps it{{/editing}}){{/secret}}</label>
            {{#textarea}}<textarea id="{{id}}" name="{{input}}" rows="3"{{#error}} aria-invalid="true" aria-describedby="error-{{id}}"{{/error}}>{{value}}</textarea>{{/textarea}}
            {{#select}}<select id="{{id}}" name="{{input}}">{{#options}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/options}}</select>{{/select}}
            {{#plain}}<input id="{{id}}" name="{{input}}" type="{{input_type}}" value="{{value}}" autocomplete="off"{{#error}} aria-invalid="true" aria-describedby="error-{{id}}"{{/error}}>{{/plain}}
            {{#hint}}<small class="hint">{{.}}</small>{{/hint}}
            \(fieldError)
            {{/config_fields}}
          </fieldset>
          <label class="check"><input type="checkbox" name="check" value="on"{{#check}} checked{{/check}} id="check-destination"> Run the destination test before saving</label>
          <div class="actions">
            <button type="submit" name="intent" value="save" id="save-export">Save</button>
            <button type="submit" name="intent" value="test" id="test-destination">Run destination test</button>
          </div>
        </form>
        {{#has_test_results}}
        <section id="test-results" aria-live="polite">
          <h2>Destination test</h2>
          <ol class="steps">
            {{#test_results}}<li class="step status-{{status_class}}"><strong>{{name}}</strong>: {{status}}<br><span class="muted">{{description}}</span>{{#message}}<br><span class="step-message">{{.}}</span>{{/message}}</li>{{/test_results}}
          </ol>
        </section>
        {{/has_test_results}}
        {{/body}}{{/layout}}
        """

    static let runs = """
        <table id="runs-table">
          <caption>Runs, newest first</caption>
          <thead><tr><th scope="col">Status</th><th scope="col">Interval</th><th scope="col">Records</th><th scope="col">Bytes</th><th scope="col">Duration</th><th scope="col">Attempts</th><th scope="col">Error</th><th scope="col">Actions</th></tr></thead>
          <tbody>
          {{#runs}}
          <tr class="run" data-status="{{status}}">
            <td><span class="mark status-{{status_class}}" aria-hidden="true"></span> <span class="run-status">{{status}}</span></td>
            <td>{{interval}}</td><td>{{records}}</td><td>{{bytes}}</td><td>{{duration}}</td><td>{{attempt}}</td><td class="run-error">{{latest_error}}</td>
            <td>
              <form method="post" action="{{base}}/runs/{{id}}/retry" class="inline">\(csrf)<button type="submit">Retry</button></form>
              {{^finished}}<form method="post" action="{{base}}/runs/{{id}}/cancel" class="inline">\(csrf)<button type="submit" class="danger">Cancel</button></form>{{/finished}}
            </td>
          </tr>
          {{/runs}}
          {{^runs}}<tr><td colspan="8">No runs yet.</td></tr>{{/runs}}
          </tbody>
        </table>
        <table id="backfills-table">
          <caption>Backfills</caption>
          <thead><tr><th scope="col">Status</th><th scope="col">Range</th><th scope="col">Progress</th><th scope="col">Records (estimate)</th><th scope="col">Actions</th></tr></thead>
          <tbody>
          {{#backfills}}
          <tr class="backfill" data-status="{{status}}">
            <td><span class="mark status-{{status_class}}" aria-hidden="true"></span> <span class="backfill-status">{{status}}</span></td>
            <td>{{range}}</td>
            <td><progress max="{{total}}" value="{{finished}}" aria-label="Runs finished">{{finished}}/{{total}}</progress> {{finished}}/{{total}} runs</td>
            <td>{{records}}</td>
            <td>{{^done}}<form method="post" action="{{base}}/backfills/{{id}}/cancel" class="inline">\(csrf)<button type="submit" class="danger">Cancel</button></form>{{/done}}</td>
          </tr>
          {{/backfills}}
          {{^backfills}}<tr><td colspan="5">No backfills.</td></tr>{{/backfills}}
          </tbody>
        </table>
        """

    static let export = """
        {{<layout}}{{$body}}
        <h1>{{name}}</h1>
        <p class="muted">{{type}} · {{model}} · every {{interval}} · <span id="export-state">{{#paused}}Paused{{/paused}}{{^paused}}Active{{/paused}}</span></p>
        <div class="actions">
          <a class="button" href="{{base}}/edit" id="edit-export">Edit</a>
          <a class="button" href="{{base}}/backfill" id="start-backfill">Backfill</a>
          <a class="button" href="{{base}}/logs" id="view-logs">Logs</a>
          {{#paused}}<form method="post" action="{{base}}/unpause" class="inline">\(csrf)<button type="submit" id="unpause-export">Unpause</button></form>{{/paused}}
          {{^paused}}<form method="post" action="{{base}}/pause" class="inline">\(csrf)<button type="submit" id="pause-export">Pause</button></form>{{/paused}}
          <form method="post" action="{{base}}/delete" class="inline">\(csrf)<button type="submit" class="danger">Delete</button></form>
        </div>
        <section>
          <h2>Records per run and export lag</h2>
          <figure>{{{chart}}}<figcaption>Bars: records of each of the last runs; line: minutes from the end of a run's interval to its finish.</figcaption></figure>
        </section>
        <section id="runs" data-refresh="{{base}}/runs">
        {{>runs}}
        </section>
        <section>
          <h2>Destination</h2>
          <dl class="config">{{#config}}<dt>{{key}}</dt><dd>{{value}}</dd>{{/config}}</dl>
        </section>
        {{/body}}{{/layout}}
        """

    static let backfill = """
        {{<layout}}{{$body}}
        <h1>Backfill {{name}}</h1>
        {{#error}}<p class="error" role="alert" id="backfill-error">{{.}}</p>{{/error}}
        <form method="post" action="{{base}}/backfill" class="stack" id="backfill-form">
          \(csrf)
          <label for="start_at">Start (UTC)</label>
          <input id="start_at" name="start_at" type="datetime-local" required value="{{start_at}}">
          <label for="end_at">End (UTC)</label>
          <input id="end_at" name="end_at" type="datetime-local" required value="{{end_at}}">
          {{#estimate}}
          <p role="status" id="backfill-estimate">This backfill would export about <strong>{{estimate}}</strong> records.</p>
          <button type="submit" name="intent" value="start" id="confirm-backfill">Start backfill</button>
          {{/estimate}}
          <button type="submit" name="intent" value="estimate" id="estimate-backfill">Estimate</button>
        </form>
        {{/body}}{{/layout}}
        """

    static let logs = """
        {{<layout}}{{$body}}
        <h1>Logs of {{name}}</h1>
        <form method="get" action="{{base}}/logs" class="inline" id="log-filter">
          <label for="level">Level</label>
          <select id="level" name="level">{{#levels}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/levels}}</select>
          <label for="search">Search</label>
          <input id="search" name="search" value="{{search}}">
          <button type="submit">Filter</button>
        </form>
        <table id="logs">
          <caption>Newest first</caption>
          <thead><tr><th scope="col">Time</th><th scope="col">Level</th><th scope="col">Run</th><th scope="col">Message</th></tr></thead>
          <tbody>
          {{#entries}}<tr class="log level-{{level}}"><td>{{timestamp}}</td><td>{{level}}</td><td><code>{{run}}</code></td><td class="log-message">{{message}}</td></tr>{{/entries}}
          {{^entries}}<tr><td colspan="4">No log entries.</td></tr>{{/entries}}
          </tbody>
        </table>
        <p><a href="{{base}}">Back to the export</a></p>
        {{/body}}{{/layout}}
        """
}
