"""The console in a real browser: headless Chromium from Debian's packages, driven by Selenium.

Run by ConsoleBrowserTests (Swift) against a live Hedgerow with the console; the one argument is a
JSON object naming the server, the signed-up owner, the strict S3 server and where screenshots go.
Each step prints a line; any failed check raises, and the exit status is then non-zero.
"""

import json
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

settings = json.loads(sys.argv[1])
BASE = settings["base"]
SHOTS = settings["screenshots"]
os.makedirs(SHOTS, exist_ok=True)


def step(text):
    print("step: " + text, flush=True)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def browser(width=1280):
    options = webdriver.ChromeOptions()
    options.binary_location = settings.get("chromium", "/usr/bin/chromium")
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},900", "--lang=en-US"]:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(settings.get("chromedriver", "/usr/bin/chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    return driver


def shot(driver, name, width=1280):
    """A screenshot of the whole page (the window grown to the page's height)."""
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(width, min(max(height + 40, 400), 4000))
    driver.save_screenshot(os.path.join(SHOTS, name + ".png"))
    driver.set_window_size(width, 900)


def wait(driver, seconds=30):
    # An element of a page being replaced goes stale: such a check is tried again, like a missing one.
    return WebDriverWait(driver, seconds, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))


def by_id(driver, element_id):
    return wait(driver).until(EC.presence_of_element_located((By.ID, element_id)))


def fill(driver, element_id, value):
    element = by_id(driver, element_id)
    element.clear()
    element.send_keys(value)


def set_value(driver, element_id, value):
    driver.execute_script("arguments[0].value = arguments[1]", by_id(driver, element_id), value)


def click(driver, element_id):
    by_id(driver, element_id).click()


def sign_in(driver, email, password):
    driver.get(BASE + "/login")
    fill(driver, "email", email)
    fill(driver, "password", password)
    click(driver, "sign-in")
    wait(driver).until(lambda d: "/login" not in d.current_url)


def fill_s3(driver, secret):
    s3 = settings["s3"]
    fill(driver, "config-aws_access_key_id", s3["key_id"])
    fill(driver, "config-aws_secret_access_key", secret)


main = browser()
try:
    step("sign in")
    driver = main
    driver.get(BASE + "/login")
    shot(driver, "01-sign-in")
    sign_in(driver, settings["email"], settings["password"])
    check("/batch_exports" in driver.current_url, "signed in lands on the batch exports: " + driver.current_url)
    team_path = driver.current_url.split("?")[0].replace(BASE, "")

    step("create an S3 export with a wrong secret key: the field's error shows")
    click(driver, "new-export")
    wait(driver).until(EC.element_to_be_clickable((By.LINK_TEXT, "S3"))).click()
    s3 = settings["s3"]
    fill(driver, "field-name", "Nightly S3")
    fill(driver, "config-bucket_name", s3["bucket"])
    fill(driver, "config-region", "us-east-1")
    fill(driver, "config-prefix", "console/")
    fill(driver, "config-endpoint_url", s3["endpoint"])
    fill_s3(driver, "wrong-secret")
    check(by_id(driver, "check-destination").is_selected(), "the destination test runs before saving by default")
    click(driver, "save-export")
    error = by_id(driver, "error-config-aws_secret_access_key")
    check("SignatureDoesNotMatch" in error.text, "the secret's field says what S3 answered: " + error.text)
    check(by_id(driver, "config-aws_secret_access_key").get_attribute("aria-invalid") == "true", "the field is marked invalid")
    shot(driver, "03-export-form-field-error")

    step("fix it and run the destination test")
    fill_s3(driver, s3["secret"])
    click(driver, "test-destination")

    def test_results(driver):
        # Read afresh each time: the element found first can belong to the page the post replaces.
        results = driver.find_element(By.ID, "test-results")
        return results.text, [item.text for item in results.find_elements(By.CSS_SELECTOR, "li.step")]

    text, steps = wait(driver).until(
        lambda driver: test_results(driver) if driver.find_elements(By.ID, "test-results") else False,
        message="no test results")
    check(len(steps) == 2 and all("Passed" in item for item in steps), "every test step passes: " + text)
    shot(driver, "04-destination-test")
    click(driver, "save-export")
    wait(driver).until(EC.presence_of_element_located((By.ID, "export-state")))
    export_path = driver.current_url.split("?")[0].replace(BASE, "")
    check("Saved." in driver.page_source, "saved")

    step("backfill: the estimate first, then the backfill, watched until it completes")
    click(driver, "start-backfill")
    set_value(driver, "start_at", settings["backfill"]["start"])
    set_value(driver, "end_at", settings["backfill"]["end"])
    click(driver, "estimate-backfill")
    estimate = by_id(driver, "backfill-estimate")
    check(str(settings["backfill"]["records"]) in estimate.text, "the estimate counts the range's events: " + estimate.text)
    shot(driver, "05-backfill-estimate")
    click(driver, "confirm-backfill")
    # The page's script refreshes the run table every five seconds: no reload here.
    # A cell the refresh replaces while it is read goes stale: that check is tried again.
    # The runs and the backfills are read one after the other, so a run that ends between the two
    # reads shows Running beside its Completed backfill until the next refresh: wait for both.
    wait(driver, 90).until(
        lambda d: any(cell.text == "Completed" for cell in d.find_elements(By.CSS_SELECTOR, ".backfill-status"))
        and d.find_element(By.CSS_SELECTOR, "#runs-table tr.run").get_attribute("data-status") != "Running")
    run = driver.find_element(By.CSS_SELECTOR, "#runs-table tr.run")
    check(run.get_attribute("data-status") == "Completed", "the run completed: " + run.text)
    check(str(settings["backfill"]["records"]) in run.text, "the run exported the estimated records: " + run.text)
    driver.get(BASE + export_path)
    shot(driver, "06-export-runs-and-chart")

    step("read its logs, filtered by level and text")
    click(driver, "view-logs")
    rows = wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#logs tr.log"))
    check(any("Backfill" in row.text for row in rows), "the logs tell of the backfill")
    Select(by_id(driver, "level")).select_by_value("INFO")
    fill(driver, "search", "created")
    by_id(driver, "search").submit()
    wait(driver).until(lambda d: "search=created" in d.current_url)
    rows = driver.find_elements(By.CSS_SELECTOR, "#logs tr.log")
    check(rows and all("created" in row.text and "INFO" in row.text for row in rows), "the filter keeps matching lines only")
    shot(driver, "07-logs")

    step("pause it")
    driver.get(BASE + export_path)
    click(driver, "pause-export")
    wait(driver).until(lambda d: d.find_element(By.ID, "export-state").text == "Paused")

    step("a form posted without its CSRF token is refused, and changes nothing")
    driver.execute_script(
        "var f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "document.body.appendChild(f); f.submit();", export_path + "/unpause")
    heading = wait(driver).until(EC.presence_of_element_located((By.TAG_NAME, "h1")))
    check(heading.text == "Not allowed" and "CSRF" in driver.page_source, "refused: " + heading.text)
    driver.get(BASE + export_path)
    check(by_id(driver, "export-state").text == "Paused", "still paused")

    step("the export list shows the latest runs as marks")
    driver.get(BASE + team_path)
    marks = driver.find_elements(By.CSS_SELECTOR, "#exports .mark.status-completed")
    check(len(marks) >= 1, "a green mark for the completed run")
    shot(driver, "02-batch-exports")
    shot(driver, "02-batch-exports-phone", width=390)

    step("create a personal API key and use it with curl")
    driver.get(BASE + "/me/keys")
    fill(driver, "key-label", "ci")
    driver.find_element(By.CSS_SELECTOR, "input[name=scope][value='organization:read']").click()
    driver.find_element(By.CSS_SELECTOR, "input[name=scope][value='batch_export:read']").click()
    click(driver, "create-key")
    value = by_id(driver, "new-key-value").text.strip()
    check(value.startswith("phx_"), "the value is shown once: " + value)
    answer = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", "-H", "Authorization: Bearer " + value, BASE + "/api/organizations/"],
        capture_output=True, text=True, check=True).stdout
    body, status = answer.rsplit("\n", 1)
    check(status == "200" and "Acme" in body, "curl with the new key: " + answer[:300])
    denied = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "Authorization: Bearer " + value,
         BASE + "/api/organizations/"], capture_output=True, text=True, check=True).stdout
    check(denied == "403", "the key's scopes hold: " + denied)
    driver.get(BASE + "/me/keys")
    check(value not in driver.page_source, "the value is not shown again")
    shot(driver, "08-personal-api-keys")

    step("the organization page: projects, environments, tokens")
    driver.get(BASE + "/organization")
    check("phc_" in driver.page_source, "project tokens are shown")
    shot(driver, "09-organization")

    step("invite a user and accept the invite in a second browser")
    driver.get(BASE + "/organization/members")
    fill(driver, "invite-email", settings["invitee"])
    Select(by_id(driver, "invite-level")).select_by_value("8")
    click(driver, "invite-submit")
    links = wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#invites a.invite-link"))
    link = links[0].get_attribute("href")
    invite_row = driver.find_element(By.CSS_SELECTOR, "#invites tbody tr").text
    check(settings["invitee"] in invite_row and "admin" in invite_row, "the invite is for an admin: " + invite_row)
    shot(driver, "10-members-and-invites")
    second = browser()
    try:
        second.get(link)
        check(settings["invitee"] in second.page_source, "the invite names its address")
        shot(second, "11-accept-invite")
        fill(second, "first_name", "Grace")
        fill(second, "password", "another good password")
        click(second, "accept-invite")
        wait(second).until(lambda d: "/batch_exports" in d.current_url)
        check(second.find_element(By.CSS_SELECTOR, ".who").text == settings["invitee"], "signed in as the invitee")
        check("Nightly S3" in second.page_source, "the new member sees the organization's exports")
    finally:
        second.quit()
    driver.get(BASE + "/organization/members")
    check(settings["invitee"] in driver.find_element(By.TAG_NAME, "table").text, "the invitee is a member now")
    member_row = next(row for row in driver.find_elements(By.CSS_SELECTOR, "table tbody tr") if settings["invitee"] in row.text)
    level = Select(member_row.find_element(By.TAG_NAME, "select")).first_selected_option.get_attribute("value")
    check(level == "8", "the invitee joined at the invite's level (admin): " + level)
    check("No pending invites." in driver.page_source, "the invite is used up")
    print("ok", flush=True)
except Exception:
    # What the browser showed when a check failed.
    print("at " + main.current_url + ":\n" + main.find_element(By.TAG_NAME, "body").text[:4000], flush=True)
    main.save_screenshot(os.path.join(SHOTS, "failure.png"))
    raise
finally:
    main.quit()
