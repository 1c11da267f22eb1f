"""The BIRD 2 configuration scopenet renders is accepted by the real ``bird -p`` (Debian's bird2,
installed by ``make os-deps``): speakers of both families, with routes, peers and a password."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

from scopenet.bgp.bird import render
from scopenet.contracts.bgp import AdvertisedRoute, BgpSpeakerSpec, PeerSpec

U = uuid.UUID


def spec(n: int, version: int, routes: list[tuple[str, str]], peers: list[str], **kw: object) -> BgpSpeakerSpec:
    return BgpSpeakerSpec(
        speaker_id=U(int=n),
        revision=1,
        local_as=64512,
        ip_version=version,  # type: ignore[arg-type]
        peers=[PeerSpec(id=U(int=100 + n + i), peer_ip=p, remote_as=64513, **kw) for i, p in enumerate(peers)],  # type: ignore[arg-type]
        routes=[AdvertisedRoute(destination=d, next_hop=h) for d, h in routes],
    )


def test_bird_parses_the_rendered_configuration(tmp_path: Path) -> None:
    v4 = spec(1, 4, [("203.0.113.0/26", "203.0.113.66"), ("203.0.113.80/32", "203.0.113.66")], ["203.0.113.100"])
    v6 = spec(2, 6, [("2001:db8:a583::/64", "2001:db8::66")], ["2001:db8::100"], password="s3cret")
    conf = tmp_path / "bird.conf"
    conf.write_text(render([v4, v6, spec(5, 4, [], [])], router_id="10.0.0.1"))
    bird = shutil.which("bird") or "/usr/sbin/bird"
    done = subprocess.run([bird, "-p", "-c", str(conf)], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
