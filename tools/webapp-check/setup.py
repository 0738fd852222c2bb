"""People for a drive of the web app, made through the server's HTTP API as a new deployment would:
the system administrator (started with SUPPORTSIGNAL_ADMIN_EMAIL/PASSWORD) creates a test company,
whose admin sets a password through the emailed link and adds a team lead and a frontline worker.
Links are read from the SQLite outbox (mail is not sent without SMTP_URL).

    python3 setup.py [path to supportsignal.db]
"""
import json
import re
import sqlite3
import sys
import urllib.request

API = "http://127.0.0.1:3210"
DB = sys.argv[1] if len(sys.argv) > 1 else "data/supportsignal.db"
PW = "Str0ng!Pass1"


def call(kind, path, args):
    body = json.dumps({"path": path, "args": [args], "format": "json"}).encode()
    req = urllib.request.Request(f"{API}/api/{kind}", data=body, headers={"content-type": "application/json"})
    answer = json.load(urllib.request.urlopen(req))
    if answer["status"] != "success":
        raise SystemExit(f"{path}: {answer}")
    return answer["value"]


def newest_token(email):
    """The token of the newest link mailed to `email` (the outbox's rows, read as text)."""
    con = sqlite3.connect(DB)
    found = []
    for (table,) in con.execute("select name from sqlite_master where type='table'"):
        for row in con.execute(f"select * from {table}"):
            for cell in row:
                text = cell.decode("utf-8", "ignore") if isinstance(cell, bytes) else cell
                if isinstance(text, str) and email in text and "token=" in text:
                    found += re.findall(r"token=([A-Za-z0-9_\-]+)", text)
    con.close()
    return found[-1]


root = call("mutation", "auth:loginUser", {"email": "root@platform.org", "password": PW})["sessionToken"]
call("mutation", "companies:createCompany", {
    "sessionToken": root, "name": "Harbour Care", "contactEmail": "office@harbour.org",
    "adminEmail": "admin@harbour.org", "adminName": "Casey Admin", "status": "test"})
call("mutation", "auth:resetPassword", {"token": newest_token("admin@harbour.org"), "newPassword": PW})
admin = call("mutation", "auth:loginUser", {"email": "admin@harbour.org", "password": PW})["sessionToken"]
for email, role in [("lead@harbour.org", "team_lead"), ("worker@harbour.org", "frontline_worker")]:
    name = role.replace("_", " ").title()
    call("mutation", "users:createUser", {"sessionToken": admin, "name": name, "email": email, "role": role})
    call("mutation", "auth:resetPassword", {"token": newest_token(email), "newPassword": PW})
print("ready: root@platform.org, admin@, lead@, worker@harbour.org; password", PW)
