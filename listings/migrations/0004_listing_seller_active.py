"""`seller_active` on the listing: a suspended seller's listings hide without a join to users.

The data step pauses the listings of every seller not active today, as user_suspend does from
now on. The index serves "condition, newest first" browse.
"""

from django.conf import settings
from django.db import migrations, models


def pause_inactive_sellers(apps, schema_editor):
    Listing = apps.get_model("listings", "Listing")
    Listing.objects.exclude(seller__status="active").update(seller_active=False)


def noop(apps, schema_editor):
    pass


class Migration(migrations.Migration):

    dependencies = [
        ('listings', '0003_search_vector_trigger'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='listing',
            name='seller_active',
            field=models.BooleanField(db_default=True, default=True),
        ),
        migrations.RunPython(pause_inactive_sellers, noop, elidable=False),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(fields=['status', 'condition', '-created_at'], name='listing_status_cond_newest'),
        ),
    ]
