"""The API's routers, one per resource, combined into :data:`api_router`."""

from fastapi import APIRouter

from truescore.api.routes import admin, events, health, integrity, items, jobs, rankings, reviews, users

__all__ = ["api_router"]

api_router = APIRouter()
for _module in (health, items, users, reviews, events, rankings, jobs, admin, integrity):
    api_router.include_router(_module.router)
