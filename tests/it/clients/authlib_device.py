"""Device authorization grant (RFC 8628) with a standard OAuth client library (Authlib).

Usage: authlib_device.py BASE_URL CA_PEM
Prints the user code on a line "USER_CODE XXXX-XXXX", polls the token endpoint through
Authlib until approved, then prints "ME <username>" from /api/v1/me using the token.
"""

import sys
import time

from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client.errors import OAuthError

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def main() -> int:
    base, ca = sys.argv[1], sys.argv[2]
    session = OAuth2Session(client_id="python-authlib", token_endpoint_auth_method="none")
    started = session.post(
        f"{base}/auth/device/code", data={"client_id": "python-authlib", "scope": "chat:read"}, withhold_token=True, verify=ca
    ).json()
    print("USER_CODE", started["user_code"], flush=True)
    interval = started["interval"]
    deadline = time.monotonic() + started["expires_in"]
    while time.monotonic() < deadline:
        time.sleep(interval)
        try:
            token = session.fetch_token(f"{base}/auth/token", grant_type=GRANT, device_code=started["device_code"], verify=ca)
        except OAuthError as error:
            if error.error == "authorization_pending":
                continue
            if error.error == "slow_down":
                interval += 5
                continue
            print("ERROR", error.error, flush=True)
            return 1
        print("TOKEN_TYPE", token["token_type"], flush=True)
        me = session.get(f"{base}/api/v1/me", verify=ca).json()
        print("ME", me["username"], ",".join(me["scopes"]), flush=True)
        return 0
    print("ERROR expired", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
