"""OAuth tokens at rest: encrypted in ``wearables.oauth_tokens``, refreshed under a row lock.

Generic over providers (Google Health and the legacy Fitbit Web API use it); a provider plugs in
its own ``refresher`` callable. CentrePoint uses client credentials and needs none of this.
"""
