from django.urls import path

from . import views

app_name = "invitations"

urlpatterns = [
    # The link in the email; its token is moved into a signed cookie at once (invitations/logging.py redacts it).
    path("accept/<str:token>/", views.accept_token, name="accept_token"),
    path("accept/", views.accept, name="accept"),
]
