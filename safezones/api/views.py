from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView

from biddt.pagination import PagePagination
from safezones import selectors
from safezones.api.serializers import SafeZoneQuerySerializer, SafeZoneSerializer


class SafeZoneListView(ListAPIView):
    serializer_class = SafeZoneSerializer
    pagination_class = PagePagination

    @extend_schema(
        tags=["safe zones"], summary="Partner meetup places, nearest first",
        description="With `lat` and `lng`: active zones within `radius_km` (default 25, at most "
                    "500), nearest first, each with `distance_km`. Without a position: every "
                    "active zone by partner name, `distance_km` null. Page-number pagination "
                    "(the order is computed), `{next, previous, results}`.",
        parameters=[
            OpenApiParameter("lat", OpenApiTypes.DOUBLE),
            OpenApiParameter("lng", OpenApiTypes.DOUBLE),
            OpenApiParameter("radius_km", OpenApiTypes.DOUBLE),
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = SafeZoneQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        return selectors.safe_zone_nearby(lat=v.get("lat"), lng=v.get("lng"),
                                          radius_km=v["radius_km"])
