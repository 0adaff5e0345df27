"""The deploy kit, run: Debian's nginx with deploy/nginx/ims.conf (only ports and paths
changed) over TLS in front of two daphne processes and a Celery worker started from
deploy/systemd's command lines, all with deploy/ims.env.example's settings. Chat, push,
uploads and static files go through it, and so do a rolling restart and a crash."""

from __future__ import annotations

import gzip
import http.client
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trustme
from rest_framework.authtoken.models import Token

from notifications import vapid
from notifications.models import PushJob
from notifications.services.devices import device_register
from tests.deploy.kit import (
    SITE_NAME,
    Nginx,
    UnitProcess,
    collect_static,
    production_env,
    render_site,
    spare_ports,
    unit_command,
)
from tests.e2e.harness import BASE_DIR, DaphneServer, RedisProcess, database_url, wait_until
from tests.e2e.traffic import Pair, Peer, assert_each_message_once, run_traffic
from tests.factories import GroupFactory, UserFactory
from tests.notifications.providers.servers import LOCAL_PUSH_ENV, http_server
from tests.notifications.providers.test_webpush import VAPID_KEY, PushService

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

MiB = 2**20
GOING_AWAY = 1001


@dataclass
class Stack:
    nginx: Nginx
    daphnes: list[DaphneServer]
    worker: UnitProcess
    push_service: PushService
    http_port: int
    https_port: int
    tls: ssl.SSLContext

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """Over https to nginx, for the site's host name."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.https_port, context=self.tls, timeout=30)
        try:
            conn.request(method, path, body=body, headers={"Host": SITE_NAME, **(headers or {})})
            response = conn.getresponse()
            return response, response.read()
        finally:
            conn.close()

    def peer(self, user) -> Peer:
        """A chat client of `user` that connects through nginx (wss://, the site's name)."""
        token, _ = Token.objects.get_or_create(user=user)
        return Peer(
            name=user.username,
            user_id=user.pk,
            token=token.key,
            urls=[f"wss://{SITE_NAME}/ws/"],
            ssl_context=self.tls,
            connect_kwargs={"host": "127.0.0.1", "port": self.https_port},
        )

    def daphne_log(self) -> str:
        return "".join(daphne.stderr() for daphne in self.daphnes)


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("kit")
    redis = RedisProcess()  # of its own: other test runs here publish on the shared one
    redis.start()
    ca = trustme.CA()
    ca.issue_cert(SITE_NAME, "127.0.0.1").configure_cert(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    cert = ca.issue_cert(SITE_NAME, "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(folder / "cert.pem")
    cert.private_key_pem.write_to_path(folder / "key.pem")
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)

    http_port, https_port, *daphne_ports = spare_ports(4)
    push_service = PushService()
    with django_db_blocker.unblock(), http_server(push_service) as push_server:
        push_service.server = push_server
        env = production_env(
            DATABASE_URL=database_url(),
            REDIS_URL=redis.url,
            IMS_VAR_DIR=str(folder / "var"),
            IMS_VAPID_PRIVATE_KEY=vapid.private_key_b64url(VAPID_KEY),
            PYTHONUNBUFFERED="1",
            **LOCAL_PUSH_ENV,
        )
        collect_static(env)
        daphnes = [
            DaphneServer(
                port=port,
                env=env,
                log_dir=folder,
                name=f"ims-daphne@{port}",
                command=unit_command("ims-daphne@.service", instance=str(port)),
            )
            for port in daphne_ports
        ]
        worker = UnitProcess(
            unit_command("ims-celery-worker.service"), env=env, log=folder / "worker.log", ready=" ready."
        )
        nginx = Nginx(
            folder / "nginx",
            render_site(
                {
                    "server 127.0.0.1:8001 ": f"server 127.0.0.1:{daphne_ports[0]} ",
                    "server 127.0.0.1:8002 ": f"server 127.0.0.1:{daphne_ports[1]} ",
                    "listen 80;": f"listen 127.0.0.1:{http_port};",
                    "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
                    f"/etc/letsencrypt/live/{SITE_NAME}/fullchain.pem": str(folder / "cert.pem"),
                    f"/etc/letsencrypt/live/{SITE_NAME}/privkey.pem": str(folder / "key.pem"),
                    "/var/lib/ims/static/": f"{folder / 'var' / 'static'}/",
                    "/var/www/letsencrypt": str(folder / "acme"),
                }
            ),
        )
        try:
            for daphne in daphnes:
                daphne.start()
            worker.start()
            nginx.start(ports=[http_port, https_port])
            yield Stack(nginx, daphnes, worker, push_service, http_port, https_port, client_tls)
        finally:
            nginx.stop()
            worker.kill()
            for daphne in daphnes:
                daphne.kill()
            redis.kill()


def test_plain_http_is_sent_to_https_and_pages_carry_the_https_settings(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=10)
    conn.request("GET", "/chat/?x=1", headers={"Host": SITE_NAME})
    redirect = conn.getresponse()
    assert (redirect.status, redirect.getheader("Location")) == (301, f"https://{SITE_NAME}/chat/?x=1")

    response, _ = stack.request("GET", "/login/", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status == 200
    assert response.getheader("Strict-Transport-Security") == "max-age=31536000; includeSubDomains; preload"
    cookies = response.headers.get_all("Set-Cookie")
    assert any(cookie.startswith("csrftoken=") and "Secure" in cookie for cookie in cookies), cookies
    # nginx told daphne who the client is; the address a client claims for itself is dropped.
    wait_until(lambda: "GET /login/" in stack.daphne_log(), what="the access log line")
    assert "203.0.113.9" not in stack.daphne_log()

    # Straight to a daphne process, without the proxy's X-Forwarded-Proto: Django sends the
    # browser to https (SECURE_SSL_REDIRECT), since only that header says it came over TLS.
    direct = http.client.HTTPConnection("127.0.0.1", stack.daphnes[0].port, timeout=10)
    direct.request("GET", "/login/", headers={"Host": SITE_NAME})
    assert direct.getresponse().getheader("Location") == f"https://{SITE_NAME}/login/"


def test_static_files_come_from_nginx_and_the_service_worker_from_django(stack):
    response, body = stack.request("GET", "/static/ims/ims-client.js")
    assert response.status == 200
    assert body == (BASE_DIR / "static" / "ims" / "ims-client.js").read_bytes()
    assert response.getheader("Server").startswith("nginx")
    response, body = stack.request("GET", "/static/ims/ims-client.js", headers={"Accept-Encoding": "gzip"})
    assert response.getheader("Content-Encoding") == "gzip"  # collectstatic's .gz, as it is
    assert gzip.decompress(body) == (BASE_DIR / "static" / "ims" / "ims-client.js").read_bytes()

    response, body = stack.request("GET", "/sw.js")
    assert (response.status, response.getheader("Service-Worker-Allowed")) == (200, "/")
    assert "GET /sw.js" in stack.daphne_log()
    assert "/static/ims/ims-client.js" not in stack.daphne_log()

    response, _ = stack.request("GET", "/metrics")
    assert response.status == 403


def test_an_upload_over_the_limit_is_refused_by_nginx_before_daphne_reads_it(stack):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    token, _ = Token.objects.get_or_create(user=alice)
    group = GroupFactory(members=[alice, bob])
    path = f"/api/conversations/{group.pk}/uploads/"
    boundary = uuid.uuid4().hex

    def multipart(data: bytes) -> bytes:
        return (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\n'
                f"Content-Type: text/plain\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )

    headers = {
        "Authorization": f"Token {token.key}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    response, body = stack.request("POST", path, headers=headers, body=multipart(b"meeting at ten"))
    assert response.status == 201, body
    response, body = stack.request("POST", path, headers=headers, body=multipart(b"x" * 22 * MiB))
    assert response.status == 413
    assert response.getheader("Server").startswith("nginx")


def test_chat_and_push_go_through_the_proxy_and_a_restart_or_a_crash_loses_nothing(
    stack, local_push_endpoints
):
    alice, bob, carol, dave = (UserFactory(username=name) for name in ("alice", "bob", "carol", "dave"))
    # erin is offline with a browser subscribed to Web Push: the worker pushes to it.
    erin = UserFactory(username="erin")
    device_register(
        user_id=erin.pk,
        kind="webpush",
        subscription={
            "endpoint": f"{stack.push_service.server.url}/push/erin",
            "keys": stack.push_service.keys,
        },
    )
    staff = UserFactory(username="ops", is_staff=True)
    staff_token, _ = Token.objects.get_or_create(user=staff)
    peers = {user.username: stack.peer(user) for user in (alice, bob, carol, dave)}
    pairs = [
        Pair(peers["alice"], peers["bob"]),
        Pair(peers["bob"], peers["alice"]),
        Pair(peers["carol"], peers["dave"]),
        Pair(peers["dave"], peers["carol"]),
    ]
    one, two = stack.daphnes
    count = 60

    def announce_then_restart_and_crash() -> None:
        response, body = stack.request(
            "POST",
            "/api/notifications/",
            headers={"Authorization": f"Token {staff_token.key}", "Content-Type": "application/json"},
            body=(
                b'{"user_ids": [%d, %d], "title": "Deploy at noon", "content": "", '
                b'"priority": "P0", "category": "alert"}' % (alice.pk, erin.pk)
            ),
        )
        assert response.status == 201, body
        time.sleep(1)
        assert one.terminate(timeout=10) == 0, one.stderr()[-3000:]  # a rolling restart ...
        one.start()
        time.sleep(1)
        two.kill()  # ... then a crash of the other
        two.start()

    run_traffic(pairs, count=count, interval_seconds=0.05, during=announce_then_restart_and_crash)

    assert_each_message_once(pairs, count=count)
    codes = {code for peer in peers.values() for code in peer.close_codes}
    assert GOING_AWAY in codes, codes
    wait_until(
        lambda: PushJob.objects.filter(state="sent").exists(),
        what=f"the push to erin\n{stack.worker.output()}",
    )
    assert [document["title"] for document in stack.push_service.documents] == ["Deploy at noon"]
    assert [notification["title"] for notification in peers["alice"].notifications()] == ["Deploy at noon"]


def test_the_site_file_stays_in_step_with_the_settings(settings):
    site = (BASE_DIR / "deploy" / "nginx" / "ims.conf").read_text()
    assert f"client_max_body_size {-(-settings.IMS_MAX_UPLOAD_BYTES // MiB) + 1}m;" in site
    assert "proxy_read_timeout 75s;" in site
    assert 2 * settings.IMS_HEARTBEAT_SECONDS < 75
