"""POST/GET/DELETE /v1/listings/{id}/videos: content checks (PyAV), limits, metadata
stripping by remux, the poster, the worker step, delete rules, the representation, S3 (moto)."""

from __future__ import annotations

import io

import av
import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from bidding.services import bid_place
from listings import tasks
from listings.models import ListingVideo
from tests.factories import ListingFactory, UserFactory
from tests.listings.conftest import client_for, error_attr, error_code, image_bytes, media_files
from tests.listings.videos import PHONE_METADATA, make_video, read_metadata

pytestmark = pytest.mark.django_db


def url(listing) -> str:
    return f"/v1/listings/{listing.pk}/videos"


def upload(data: bytes, name: str = "clip.mp4", content_type: str = "video/mp4"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def listing():
    return ListingFactory()


@pytest.fixture
def post_video(django_capture_on_commit_callbacks):
    """POST as the seller; the after-commit work (the worker's task, eager in tests) runs
    unless `process=False`."""
    def post(listing, data: bytes, *, process: bool = True, user=None, language=None,
             **kwargs):
        client = client_for(user or listing.seller)
        headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
        with django_capture_on_commit_callbacks(execute=process):
            return client.post(url(listing), {"video": upload(data, **kwargs)},
                               format="multipart", **headers)
    return post


def polled(listing, response) -> dict:
    """The video as the seller's poll shows it once the request's after-commit work ran (the
    test client answers before the captured callbacks run; in a deployment where tasks run
    in-process the 201 itself says `ready`)."""
    assert response.status_code == 201, response.content
    return client_for(listing.seller).get(f"{url(listing)}/{response.json()['id']}").json()


def stored(field) -> bytes:
    with field.open("rb") as handle:
        return handle.read()


# --- accepted uploads -------------------------------------------------------------------------

def test_an_mp4_is_stored_remuxed_with_a_poster_and_shown_on_the_listing(media_root, listing,
                                                                          post_video):
    # given a real 1 s H.264 MP4 with sound
    data = make_video(seconds=1.0, audio=True)
    # when the seller uploads it
    response = post_video(listing, data)
    # then 201, and ready once the worker's step ran, with its URLs and duration
    assert response.status_code == 201, response.content
    assert response.json()["duration_seconds"] == pytest.approx(1.0, abs=0.05)
    body = polled(listing, response)
    assert body["status"] == "ready" and body["error"] is None
    assert body["duration_seconds"] == pytest.approx(1.0, abs=0.05)
    assert body["url"].startswith("http://testserver/media/listings/")
    assert body["url"].endswith(".mp4") and body["poster_url"].endswith("-poster.jpg")
    video = ListingVideo.objects.get(pk=body["id"])
    # the stored copy is a playable MP4 with the video and the sound, and the poster a JPEG
    meta = read_metadata(io.BytesIO(stored(video.file)))
    assert meta["codecs"] == ["h264", "aac"]
    poster = Image.open(io.BytesIO(stored(video.poster)))
    assert poster.format == "JPEG" and poster.size == (64, 48)
    # the upload as received is gone: only the clean copy and the poster remain
    assert not video.source and len(media_files(media_root)) == 2
    # and the listing shows it, to anyone
    detail = client_for(UserFactory()).get(f"/v1/listings/{listing.pk}").json()
    assert detail["videos"] == [{"url": body["url"], "poster_url": body["poster_url"],
                                 "duration_seconds": body["duration_seconds"]}]
    assert detail["images"] == []


def test_a_quicktime_hevc_clip_is_accepted_by_content_whatever_its_name(media_root, listing,
                                                                        post_video):
    data = make_video(codec="libx265", fmt="mov", size=(128, 96))
    response = post_video(listing, data, name="IMG_0001.bin",
                          content_type="application/octet-stream")
    assert response.status_code == 201, response.content
    video = ListingVideo.objects.get(pk=response.json()["id"])
    assert video.codec == "hevc"
    # remuxed into MP4, tagged so Apple players take it
    with av.open(io.BytesIO(stored(video.file))) as container:
        assert container.metadata["major_brand"] == "isom"
        assert container.streams.video[0].codec_tag == "hvc1"


def test_gps_and_creation_time_are_not_in_the_stored_copy(media_root, listing, post_video):
    # given a clip carrying where and when it was shot (container and stream metadata)
    data = make_video(metadata=PHONE_METADATA, audio=True)
    source = read_metadata(data)
    assert source["container"]["location"] == "+43.6532-079.3832/"
    assert source["container"]["creation_time"].startswith("2026-05-01")
    assert source["streams"][0]["creation_time"].startswith("2026-05-01")
    # when uploaded
    response = post_video(listing, data)
    assert response.status_code == 201, response.content
    # then the stored copy, read back with PyAV, has none of it
    clean = stored(ListingVideo.objects.get(pk=response.json()["id"]).file)
    meta = read_metadata(clean)
    keys = {k.lower() for k in meta["container"]} | {
        k.lower() for stream in meta["streams"] for k in stream}
    assert not {k for k in keys if k.startswith(("location", "creation_time", "make",
                                                 "title", "encoder"))}, meta
    assert meta["codecs"] == ["h264", "aac"]
    for needle in (b"43.6532", b"HomeCam", b"living room", b"\xa9xyz"):
        assert needle not in clean


# --- refused uploads ----------------------------------------------------------------------

@pytest.mark.parametrize(("data", "name"), [
    (b"MZ\x90\x00 this is an executable, renamed" * 100, "clip.mp4"),
    (image_bytes("PNG"), "clip.mov"),
    (make_video(fmt="matroska"), "clip.mp4"),  # H.264, but in Matroska
    (make_video(codec="mpeg4"), "clip.mp4"),  # MP4, but MPEG-4 Part 2
    (make_video()[:600], "clip.mp4"),  # truncated before the header's end
    (b"", "clip.mp4"),
], ids=["executable", "png", "matroska", "mpeg4-codec", "truncated", "empty"])
def test_non_videos_are_400_invalid_video_and_leave_no_file(media_root, listing, post_video,
                                                            data, name):
    response = post_video(listing, data, name=name)
    assert response.status_code == 400, response.content
    assert (error_code(response), error_attr(response)) == ("invalid_video", "video")
    assert not ListingVideo.objects.exists()
    assert media_files(media_root) == []


def test_missing_video_field_is_400(media_root, listing):
    response = client_for(listing.seller).post(url(listing), {}, format="multipart")
    assert response.status_code == 400 and error_code(response) == "invalid_video"


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(media_root, listing,
                                                                   post_video, monkeypatch):
    # given a limit of 2 KB (BIDDT_VIDEO_MAX_BYTES) and a valid clip larger than that
    media_root.BIDDT_VIDEO_MAX_BYTES = 2048
    data = make_video(seconds=2.0, size=(160, 120))
    assert len(data) > 2048
    probed = []
    monkeypatch.setattr("listings.videos.video_probe", lambda path: probed.append(path))
    # when uploaded
    response = post_video(listing, data)
    # then 400 invalid_video naming the limit; FFmpeg never saw it, nothing is stored
    assert response.status_code == 400, response.content
    assert error_code(response) == "invalid_video"
    assert "larger than 2048 bytes" in response.json()["errors"][0]["detail"]
    assert probed == [] and media_files(media_root) == []


def test_a_body_far_over_the_limit_is_refused_from_its_content_length(media_root, listing,
                                                                      monkeypatch):
    # given a 1 KB limit and a 1.1 MB body (the check allows 1 MB of multipart envelope)
    media_root.BIDDT_VIDEO_MAX_BYTES = 1024
    parsed = []
    monkeypatch.setattr("listings.api.serializers.ListingVideoUploadSerializer.is_valid",
                        lambda self, **kw: parsed.append(1))
    response = client_for(listing.seller).post(
        url(listing), {"video": upload(b"\0" * (1024 * 1024 + 4096))}, format="multipart")
    assert response.status_code == 400 and error_code(response) == "invalid_video"
    assert parsed == []  # refused before the body was parsed


def test_a_clip_over_the_duration_limit_is_refused(media_root, listing, post_video):
    media_root.BIDDT_VIDEO_MAX_SECONDS = 2
    response = post_video(listing, make_video(seconds=3.0))
    assert response.status_code == 400, response.content
    assert error_code(response) == "invalid_video"
    assert "longer than 2 seconds" in response.json()["errors"][0]["detail"]
    assert post_video(listing, make_video(seconds=2.0)).status_code == 201


def test_a_frame_size_over_the_limit_is_refused(media_root, listing, post_video):
    media_root.BIDDT_VIDEO_MAX_PIXELS = 64 * 48 - 1
    response = post_video(listing, make_video(size=(64, 48)))
    assert response.status_code == 400 and error_code(response) == "invalid_video"


def test_the_reader_runs_under_the_memory_cap(media_root, listing, post_video):
    # given a memory cap FFmpeg can't even load under (what a decoder bomb would hit)
    media_root.BIDDT_VIDEO_MEMORY_BYTES = 32 * 1024 * 1024
    # when a valid clip is uploaded
    response = post_video(listing, make_video())
    # then the capped child fails and the upload is refused, the server thread unharmed
    assert response.status_code == 400 and error_code(response) == "invalid_video"
    assert media_files(media_root) == []


def test_a_reader_past_its_time_is_killed_and_the_upload_refused(media_root, listing,
                                                                 post_video):
    media_root.BIDDT_VIDEO_PROBE_TIMEOUT_SECONDS = 0.001
    response = post_video(listing, make_video())
    assert response.status_code == 400 and error_code(response) == "invalid_video"
    assert "in time" in response.json()["errors"][0]["detail"]


def test_too_many_readers_at_once_is_503(media_root, listing, post_video):
    from biddt.videos import video_slot

    media_root.BIDDT_VIDEO_CONCURRENCY = 1
    media_root.BIDDT_VIDEO_WAIT_SECONDS = 0.01
    seller = client_for(listing.seller)
    seller.raise_request_exception = False  # a 5xx is reported, not raised to the test
    with video_slot():  # another upload holds the only slot
        response = seller.post(url(listing), {"video": upload(make_video())},
                               format="multipart")
    assert response.status_code == 503 and error_code(response) == "service_unavailable"
    assert post_video(listing, make_video()).status_code == 201


# --- the worker's step ----------------------------------------------------------------------

def test_until_the_worker_runs_the_video_is_processing_and_not_shown(media_root, listing,
                                                                     post_video):
    # given an upload whose cleaning hasn't run yet
    response = post_video(listing, make_video(metadata=PHONE_METADATA), process=False)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["url"], body["poster_url"]) == ("processing", None, None)
    assert body["duration_seconds"] == pytest.approx(1.0, abs=0.05)
    # then only the private source is stored, and the listing shows no video
    assert len(media_files(media_root)) == 1
    assert client_for(UserFactory()).get(f"/v1/listings/{listing.pk}").json()["videos"] == []
    # when the worker runs (twice: a duplicate delivery)
    assert tasks.listing_video_process(body["id"]) == "ready"
    assert tasks.listing_video_process(body["id"]) == "gone"
    # then it is ready, the source gone, and the seller's poll shows the URLs
    polled = client_for(listing.seller).get(f"{url(listing)}/{body['id']}").json()
    assert polled["status"] == "ready" and polled["url"] and polled["poster_url"]
    assert len(media_files(media_root)) == 2
    assert len(client_for(UserFactory()).get(f"/v1/listings/{listing.pk}").json()["videos"]) \
        == 1


def test_a_file_the_worker_refuses_ends_failed_and_frees_the_slot(media_root, listing,
                                                                   post_video):
    # given an upload accepted on the request, then a limit the worker applies lower
    body = post_video(listing, make_video(seconds=2.0), process=False).json()
    media_root.BIDDT_VIDEO_MAX_SECONDS = 1
    # when the worker runs
    assert tasks.listing_video_process(body["id"]) == "failed"
    # then the video is failed with the reason, nothing is stored, and another may come
    polled = client_for(listing.seller).get(f"{url(listing)}/{body['id']}").json()
    assert polled["status"] == "failed" and "longer than 1 second." in polled["error"]
    assert media_files(media_root) == []
    media_root.BIDDT_VIDEO_MAX_SECONDS = 60
    assert post_video(listing, make_video()).status_code == 201


def test_the_workers_verdict_is_written_in_the_sellers_language(media_root, post_video):
    # given a French seller whose upload passes the request's check, then a lower limit
    listing = ListingFactory(seller=UserFactory(language="fr"))
    body = post_video(listing, make_video(seconds=2.0), process=False).json()
    media_root.BIDDT_VIDEO_MAX_SECONDS = 1
    # when the worker (no request, no Accept-Language) refuses it
    assert tasks.listing_video_process(body["id"]) == "failed"
    # then the seller reads why in French, whatever language the poll asks in
    polled = client_for(listing.seller).get(f"{url(listing)}/{body['id']}").json()
    assert polled["error"] == "La vidéo dure plus de 1 seconde."


@pytest.mark.parametrize(("data", "english", "french"), [
    (b"", "Send the video as the multipart field `video`.",  # an empty part is no file
     "Envoyez la vidéo dans le champ multipart `video`."),
    (b"not a video at all" * 100, "The file is not a readable MP4 or QuickTime video.",
     "Le fichier n’est pas une vidéo MP4 ou QuickTime lisible."),
])
def test_a_refusal_by_content_follows_accept_language(media_root, listing, post_video, data,
                                                       english, french):
    for language, detail in ((None, english), ("fr-CA", french)):
        response = post_video(listing, data, language=language)
        assert response.status_code == 400
        (item,) = response.json()["errors"]
        assert (item["code"], item["detail"]) == ("invalid_video", detail)


def test_a_refusal_from_the_child_process_is_french_for_a_french_request(media_root, listing,
                                                                          post_video):
    # the child reads the file and answers a code; the detail is written in the request's
    # language (here: the duration limit, a plural)
    media_root.BIDDT_VIDEO_MAX_SECONDS = 1
    response = post_video(listing, make_video(seconds=3.0), language="fr")
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] == "La vidéo dure plus de 1 seconde."


def test_a_video_deleted_before_the_worker_runs_leaves_no_file(media_root, listing, post_video,
                                                               django_capture_on_commit_callbacks):
    body = post_video(listing, make_video(), process=False).json()
    with django_capture_on_commit_callbacks(execute=True):
        deleted = client_for(listing.seller).delete(f"{url(listing)}/{body['id']}")
    assert deleted.status_code == 204
    assert tasks.listing_video_process(body["id"]) == "gone"
    assert media_files(media_root) == []


def test_a_video_whose_task_was_lost_is_queued_again_then_given_up(
        media_root, listing, post_video, django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    # given two uploads whose tasks never ran: one 11 minutes old, one 3 hours old
    lost = post_video(listing, make_video(), process=False).json()
    ancient = post_video(ListingFactory(), make_video(), process=False).json()
    now = timezone.now()
    ListingVideo.objects.filter(pk=lost["id"]).update(created_at=now - timedelta(minutes=11))
    ListingVideo.objects.filter(pk=ancient["id"]).update(created_at=now - timedelta(hours=3))
    recent = post_video(ListingFactory(), make_video(), process=False).json()
    # when the sweep runs
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.listing_videos_requeue() == 1
    # then the lost one is processed, the ancient one failed, the recent one left alone
    statuses = dict(ListingVideo.objects.values_list("id", "status"))
    assert {str(k): v for k, v in statuses.items()} == {
        lost["id"]: "ready", ancient["id"]: "failed", recent["id"]: "processing"}
    assert len(media_files(media_root)) == 3  # lost's file and poster, recent's source


def test_a_large_upload_is_read_from_its_temporary_file(media_root, listing, post_video):
    media_root.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every upload goes to a temporary file
    body = polled(listing, post_video(listing, make_video(metadata=PHONE_METADATA)))
    assert body["status"] == "ready"
    assert "location" not in read_metadata(stored(ListingVideo.objects.get().file))["container"]


def test_only_the_seller_polls_a_video(media_root, listing, post_video):
    body = post_video(listing, make_video()).json()
    response = client_for(UserFactory()).get(f"{url(listing)}/{body['id']}")
    assert response.status_code == 404


# --- one per listing, who may add ---------------------------------------------------------------

def test_a_second_video_is_400_invalid_video(media_root, listing, post_video):
    assert post_video(listing, make_video()).status_code == 201
    response = post_video(listing, make_video())
    assert response.status_code == 400, response.content
    assert (error_code(response), error_attr(response)) == ("invalid_video", "video")
    assert "at most 1 video" in response.json()["errors"][0]["detail"]
    assert ListingVideo.objects.count() == 1 and len(media_files(media_root)) == 2


def test_only_the_seller_adds_a_video_to_an_editable_listing(media_root, listing, post_video):
    other = UserFactory()
    assert post_video(listing, make_video(), user=other).status_code == 403
    assert post_video(ListingFactory(status="draft"), make_video(), user=other) \
        .status_code == 404
    sold = post_video(ListingFactory(status="sold"), make_video())
    assert sold.status_code == 409 and error_code(sold) == "listing_not_editable"
    assert media_files(media_root) == []


# --- deletion -------------------------------------------------------------------------------

def test_the_seller_deletes_the_video_and_its_files(media_root, listing, post_video,
                                                    django_capture_on_commit_callbacks):
    body = polled(listing, post_video(listing, make_video()))
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(listing.seller).delete(f"{url(listing)}/{body['id']}")
    assert response.status_code == 204
    assert not ListingVideo.objects.exists() and media_files(media_root) == []
    assert client_for(listing.seller).get(f"/v1/listings/{listing.pk}").json()["videos"] == []
    # and a new one may be added
    assert post_video(listing, make_video()).status_code == 201


def test_delete_is_refused_once_a_bid_exists(media_root, listing, post_video):
    body = post_video(listing, make_video()).json()
    bid_place(listing_id=listing.pk, bidder=UserFactory(), amount_cents=1000)
    response = client_for(listing.seller).delete(f"{url(listing)}/{body['id']}")
    assert response.status_code == 409 and error_code(response) == "listing_has_bids"
    assert ListingVideo.objects.count() == 1 and len(media_files(media_root)) == 2


def test_delete_rules_for_others_unknown_ids_and_closed_listings(media_root, listing,
                                                                 post_video):
    body = post_video(listing, make_video()).json()
    video_url = f"{url(listing)}/{body['id']}"
    assert client_for(UserFactory()).delete(video_url).status_code == 403
    other = ListingFactory(seller=listing.seller)
    assert client_for(listing.seller).delete(f"{url(other)}/{body['id']}").status_code == 404
    missing = client_for(listing.seller).delete(
        f"{url(listing)}/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and error_code(missing) == "not_found"
    type(listing).objects.filter(pk=listing.pk).update(status="unsold")
    closed = client_for(listing.seller).delete(video_url)
    assert closed.status_code == 409 and error_code(closed) == "listing_not_editable"
    assert ListingVideo.objects.count() == 1


# --- the representation and the schema ------------------------------------------------------

def test_browse_shows_ready_videos_like_the_detail(media_root, listing, post_video):
    ready = polled(listing, post_video(listing, make_video()))
    post_video(ListingFactory(), make_video(), process=False)  # still processing
    page = client_for(UserFactory()).get("/v1/listings").json()["results"]
    by_id = {r["id"]: r for r in page}
    detail = client_for(UserFactory()).get(f"/v1/listings/{listing.pk}").json()
    assert by_id[str(listing.pk)]["videos"] == detail["videos"] == [
        {"url": ready["url"], "poster_url": ready["poster_url"],
         "duration_seconds": ready["duration_seconds"]}]
    assert [r["videos"] for r in page if r["id"] != str(listing.pk)] == [[]]


def test_the_schema_declares_the_endpoints_and_the_listing_videos(api):
    schema = api.get("/v1/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    post = paths["/v1/listings/{listing_id}/videos"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert "invalid_video" in post["description"] and "processing" in post["description"]
    assert {"201", "400", "403", "404", "409", "503"} <= set(post["responses"])
    detail = paths["/v1/listings/{listing_id}/videos/{video_id}"]
    assert {"get", "delete"} <= set(detail)
    assert "listing_has_bids" in detail["delete"]["description"]
    components = schema["components"]["schemas"]
    assert set(components["ListingVideo"]["properties"]) == {
        "id", "status", "url", "poster_url", "duration_seconds", "error"}
    assert components["ListingVideo"]["properties"]["status"]
    assert "videos" in components["Listing"]["properties"]


# --- S3 -------------------------------------------------------------------------------------

def test_on_a_real_moto_s3_server_only_the_clean_copy_and_poster_stay(
        moto_s3, listing, post_video, django_capture_on_commit_callbacks):
    s3, bucket, endpoint = moto_s3
    # given a clip with GPS and creation time, media on S3
    body = polled(listing, post_video(listing, make_video(metadata=PHONE_METADATA)))
    # then the bucket holds the remuxed file and the poster (the source was deleted)
    video = ListingVideo.objects.get(pk=body["id"])
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted([video.file.name, video.poster.name])
    clean = s3.get_object(Bucket=bucket, Key=video.file.name)["Body"].read()
    meta = read_metadata(clean)
    assert "location" not in meta["container"] and "creation_time" not in meta["container"]
    # and the URLs are signed, and work
    for signed in (body["url"], body["poster_url"]):
        assert signed.startswith(endpoint) and "Signature" in signed
    assert httpx.get(body["url"]).content == clean
    # and deletion removes both objects
    with django_capture_on_commit_callbacks(execute=True):
        client_for(listing.seller).delete(f"{url(listing)}/{body['id']}")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


# --- the console ----------------------------------------------------------------------------

def test_the_listing_admin_page_shows_the_video_small_and_read_only(media_root, listing,
                                                                    post_video):
    from django.test import Client

    from accounts.roles import SUPPORT, user_set_role

    body = polled(listing, post_video(listing, make_video()))
    staff = UserFactory()
    user_set_role(user=staff, role=SUPPORT)
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/listings/listing/{listing.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    video = ListingVideo.objects.get(pk=body["id"])
    assert f'<video src="{video.file.url}" poster="{video.poster.url}" width="160"' in html
    assert "64×48" in html and "videos-0-status" not in html  # shown, not editable
