"""Microsoft's own Python auth libraries, unmodified, against a siemgate server.

Each flow is one sub-command. It prints one JSON object on standard output
holding what the library handed back, for the Rust test to check; a library
error is printed as `{"error": ...}` and exits non-zero. The authority's CA
comes from REQUESTS_CA_BUNDLE and SSL_CERT_FILE, as a user would set them.

    clients.py adal AUTHORITY CLIENT_ID
    clients.py msal-client AUTHORITY CLIENT_ID
    clients.py msal-auth-code AUTHORITY CLIENT_ID REDIRECT_URI USERNAME
    clients.py identity-sync HOST TENANT CLIENT_ID
    clients.py identity-async HOST TENANT CLIENT_ID

The client secret and the user's password come from the environment
(CLIENT_SECRET, USER_PASSWORD), never the command line.
"""

import asyncio
import html.parser
import json
import os
import sys
import urllib.parse

GRAPH = "https://graph.windows.net"


def adal_client_credentials(authority, client_id):
    import adal

    context = adal.AuthenticationContext(authority, validate_authority=False)
    result = context.acquire_token_with_client_credentials(
        GRAPH, client_id, os.environ["CLIENT_SECRET"]
    )
    return {"access_token": result["accessToken"], "expires_in": result["expiresIn"]}


def msal_client_credentials(authority, client_id):
    import msal

    app = msal.ConfidentialClientApplication(
        client_id,
        client_credential=os.environ["CLIENT_SECRET"],
        authority=authority,
        instance_discovery=False,
    )
    first = app.acquire_token_for_client([GRAPH + "/.default"])
    if "access_token" not in first:
        return {"error": first}
    again = app.acquire_token_for_client([GRAPH + "/.default"])
    return {
        "access_token": first["access_token"],
        "expires_in": first["expires_in"],
        "token_source": first.get("token_source"),
        "second_token_source": again.get("token_source"),
    }


class FormReader(html.parser.HTMLParser):
    """The sign-in page's form: its action and its input fields."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.action = attrs.get("action")
        elif tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


def sign_in(auth_uri, username, password):
    """Signs in on the server's page as a browser would, with a plain HTTP
    client: the page, its form posted back with the cookie it set, and the
    redirect to the app caught rather than followed."""
    import requests

    session = requests.Session()
    page = session.get(auth_uri)
    page.raise_for_status()
    form = FormReader()
    form.feed(page.text)
    if form.action is None:
        raise RuntimeError("no sign-in form on the page: " + page.text[:500])
    form.fields["username"] = username
    form.fields["password"] = password
    target = urllib.parse.urljoin(auth_uri, form.action)
    answer = session.post(target, data=form.fields, allow_redirects=False)
    if answer.status_code != 302:
        raise RuntimeError(f"sign-in answered {answer.status_code}: {answer.text[:500]}")
    location = answer.headers["Location"]
    query = urllib.parse.urlparse(location).query
    return location, {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}


def msal_auth_code(authority, client_id, redirect_uri, username):
    import msal

    app = msal.ConfidentialClientApplication(
        client_id,
        client_credential=os.environ["CLIENT_SECRET"],
        authority=authority,
        instance_discovery=False,
    )
    scopes = [GRAPH + "/user_impersonation"]
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=redirect_uri)
    location, auth_response = sign_in(flow["auth_uri"], username, os.environ["USER_PASSWORD"])
    result = app.acquire_token_by_auth_code_flow(flow, auth_response)
    if "access_token" not in result:
        return {"error": result}
    accounts = app.get_accounts()
    if not accounts:
        return {"error": "MSAL made no account of the sign-in"}
    # A forced refresh goes to the server with the refresh token.
    refreshed = app.acquire_token_silent(scopes, account=accounts[0], force_refresh=True)
    if not refreshed or "access_token" not in refreshed:
        return {"error": {"refresh": refreshed}}
    return {
        "redirected_to": location.split("?")[0],
        "access_token": result["access_token"],
        "id_token_claims": result["id_token_claims"],
        "nonce": flow["nonce"],
        "account_username": accounts[0]["username"],
        "home_account_id": accounts[0]["home_account_id"],
        "refreshed_access_token": refreshed["access_token"],
        "refreshed_source": refreshed.get("token_source"),
    }


def identity_sync(host, tenant, client_id):
    from azure.identity import ClientSecretCredential

    credential = ClientSecretCredential(
        tenant,
        client_id,
        os.environ["CLIENT_SECRET"],
        authority=host,
        disable_instance_discovery=True,
    )
    token = credential.get_token(GRAPH + "/.default")
    return {"access_token": token.token, "expires_on": token.expires_on}


def identity_async(host, tenant, client_id):
    from azure.identity.aio import ClientSecretCredential

    async def fetch():
        credential = ClientSecretCredential(
            tenant, client_id, os.environ["CLIENT_SECRET"], authority=host
        )
        async with credential:
            return await credential.get_token(GRAPH + "/.default")

    token = asyncio.run(fetch())
    return {"access_token": token.token, "expires_on": token.expires_on}


FLOWS = {
    "adal": adal_client_credentials,
    "msal-client": msal_client_credentials,
    "msal-auth-code": msal_auth_code,
    "identity-sync": identity_sync,
    "identity-async": identity_async,
}


def main():
    flow, args = sys.argv[1], sys.argv[2:]
    try:
        result = FLOWS[flow](*args)
    except Exception as e:  # the test wants the library's own words
        result = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result))
    sys.exit(1 if "error" in result else 0)


if __name__ == "__main__":
    main()
