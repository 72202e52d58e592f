"""The console's words in Russian (the default) and English.

A page's language comes from ``?lang=`` (remembered in a cookie), then the cookie, then
Russian. Reasons are shown as scoring wrote them.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"

MESSAGES: dict[str, dict[str, str]] = {
    "app_title": {"ru": "Риск-консоль таможенного поста", "en": "Customs risk console"},
    "nav_queue": {"ru": "Очередь", "en": "Queue"},
    "nav_dashboard": {"ru": "Показатели", "en": "Dashboard"},
    "nav_audit": {"ru": "Журнал", "en": "Audit log"},
    "nav_api": {"ru": "API", "en": "API"},
    "logout": {"ru": "Выйти", "en": "Log out"},
    "login_title": {"ru": "Вход для инспекторов", "en": "Officers' log-in"},
    "username": {"ru": "Имя пользователя", "en": "User name"},
    "password": {"ru": "Пароль", "en": "Password"},
    "login": {"ru": "Войти", "en": "Log in"},
    "login_failed": {
        "ru": "Неверное имя пользователя или пароль.",
        "en": "Wrong user name or password.",
    },
    "login_throttled": {
        "ru": "Слишком много неудачных попыток входа под этим именем с вашего адреса. "
        "Повторите через {minutes} мин.",
        "en": "Too many failed log-ins for this user name from your address. "
        "Try again in {minutes} min.",
    },
    "role_officer": {"ru": "инспектор", "en": "officer"},
    "role_supervisor": {"ru": "старший инспектор", "en": "supervisor"},
    "role_analyst": {"ru": "аналитик", "en": "analyst"},
    "queue_title": {"ru": "Очередь пункта пропуска", "en": "Crossing queue"},
    "crossing": {"ru": "Пункт пропуска", "en": "Crossing"},
    "all_crossings": {"ru": "Все пункты", "en": "All crossings"},
    "lane": {"ru": "Коридор", "en": "Lane"},
    "all_lanes": {"ru": "Все коридоры", "en": "All lanes"},
    "show": {"ru": "Показать", "en": "Show"},
    "lane_red": {"ru": "красный", "en": "red"},
    "lane_yellow": {"ru": "жёлтый", "en": "yellow"},
    "lane_green": {"ru": "зелёный", "en": "green"},
    "lane_blue": {"ru": "синий", "en": "blue"},
    "lane_red_hint": {"ru": "досмотр", "en": "inspection"},
    "lane_yellow_hint": {"ru": "проверка документов", "en": "document check"},
    "lane_green_hint": {"ru": "выпуск", "en": "release"},
    "lane_blue_hint": {"ru": "после выпуска", "en": "post-clearance"},
    "truck": {"ru": "Грузовик", "en": "Truck"},
    "plate": {"ru": "Госномер", "en": "Plate"},
    "risk": {"ru": "Риск", "en": "Risk"},
    "duty_at_risk": {"ru": "Пошлины под риском", "en": "Duty at risk"},
    "random": {"ru": "Случайный отбор", "en": "Random pick"},
    "random_short": {"ru": "случайный", "en": "random"},
    "waiting": {"ru": "Ожидание", "en": "Waiting"},
    "items": {"ru": "Товаров", "en": "Items"},
    "decided_by": {"ru": "Кем назначен", "en": "Set by"},
    "decided_model": {"ru": "модель", "en": "model"},
    "decided_rule": {"ru": "правило", "en": "rule"},
    "decided_random": {"ru": "случайный отбор", "en": "random share"},
    "decided_override": {"ru": "старший инспектор", "en": "supervisor"},
    "queue_empty": {
        "ru": "В очереди нет грузовиков по этому фильтру.",
        "en": "No trucks in the queue for this filter.",
    },
    "refreshes": {
        "ru": "Обновляется автоматически каждые {seconds} с.",
        "en": "Refreshes itself every {seconds} s.",
    },
    "updated_at": {"ru": "Обновлено", "en": "Updated"},
    "arrived": {"ru": "Прибыл", "en": "Arrived"},
    "status": {"ru": "Статус", "en": "Status"},
    "status_waiting": {"ru": "ожидает", "en": "waiting"},
    "status_inspected": {"ru": "досмотрен", "en": "inspected"},
    "status_departed": {"ru": "убыл из очереди", "en": "left the queue"},
    "action_truck_departed": {"ru": "убыл из очереди", "en": "left the queue"},
    "departed_note": {
        "ru": "Этого грузовика нет в новой очереди пункта пропуска ({run}): он убыл.",
        "en": "This truck is not in the crossing's newer queue ({run}): it has left.",
    },
    "model_version": {"ru": "Версия модели", "en": "Model version"},
    "reasons": {"ru": "Почему отобран", "en": "Why flagged"},
    "no_reasons": {
        "ru": "Причин нет: модель не видит повышенного риска.",
        "en": "No reasons: the model sees no raised risk.",
    },
    "declarations": {"ru": "Декларации", "en": "Declarations"},
    "declaration": {"ru": "Декларация", "en": "Declaration"},
    "declared_at": {"ru": "Подана", "en": "Filed"},
    "importer": {"ru": "Импортёр", "en": "Importer"},
    "registered_on": {"ru": "зарегистрирован", "en": "registered"},
    "declarant": {"ru": "Декларант", "en": "Declarant"},
    "procedure": {"ru": "Процедура", "en": "Procedure"},
    "track_record": {"ru": "История проверок импортёра", "en": "Importer's track record"},
    "tr_inspected": {"ru": "проверено деклараций", "en": "declarations inspected"},
    "tr_violations": {"ru": "нарушений", "en": "violations"},
    "tr_hit_rate": {"ru": "доля нарушений", "en": "hit rate"},
    "tr_extra_duty": {"ru": "доначислено", "en": "extra duty"},
    "tr_last_violation": {"ru": "последнее нарушение", "en": "last violation"},
    "tr_none": {"ru": "проверок ещё не было", "en": "never inspected"},
    "hs_code": {"ru": "Код ТН ВЭД", "en": "HS code"},
    "goods": {"ru": "Товар", "en": "Goods"},
    "origin": {"ru": "Происхождение / отправление", "en": "Origin / dispatch"},
    "net_gross": {"ru": "Нетто / брутто, кг", "en": "Net / gross, kg"},
    "value": {"ru": "Стоимость, USD", "en": "Value, USD"},
    "usd_per_kg": {"ru": "USD/кг", "en": "USD/kg"},
    "duty_rate": {"ru": "Ставка", "en": "Rate"},
    "record_result": {"ru": "Результат досмотра", "en": "Inspection result"},
    "correct_result": {"ru": "Исправить результат", "en": "Correct the result"},
    "result": {"ru": "Результат", "en": "Result"},
    "result_clean": {"ru": "нарушений не выявлено", "en": "clean"},
    "result_undervaluation": {"ru": "занижение стоимости", "en": "undervaluation"},
    "result_reexport": {"ru": "реэкспорт через третью страну", "en": "re-export"},
    "result_cargo_consolidation": {"ru": "«карго»-консолидация", "en": "cargo consolidation"},
    "result_transit_diversion": {"ru": "уклонение от транзита", "en": "transit diversion"},
    "result_misclassification": {"ru": "неверный код ТН ВЭД", "en": "misclassification"},
    "result_false_origin": {"ru": "ложное происхождение", "en": "false origin"},
    "result_one_day_firm": {"ru": "фирма-однодневка", "en": "one-day firm"},
    "result_weight_misdeclaration": {"ru": "недостоверный вес", "en": "weight misdeclaration"},
    "result_splitting": {"ru": "дробление партии", "en": "splitting"},
    "result_other": {"ru": "иное нарушение", "en": "other violation"},
    "violation_in": {"ru": "Нарушение в декларации", "en": "Violation in declaration"},
    "whole_truck": {"ru": "весь грузовик", "en": "the whole truck"},
    "extra_duty": {"ru": "Доначислено пошлин, USD", "en": "Extra duty, USD"},
    "notes": {"ru": "Примечания", "en": "Notes"},
    "save_result": {"ru": "Сохранить результат", "en": "Save result"},
    "result_saved": {"ru": "Результат сохранён.", "en": "Result saved."},
    "green_no_result": {
        "ru": "Грузовик в зелёном коридоре выпущен без досмотра. Чтобы досмотреть его, "
        "старший инспектор должен сменить коридор.",
        "en": "A green-lane truck is released uninspected. To inspect it, a supervisor must "
        "change its lane first.",
    },
    "override": {"ru": "Сменить коридор", "en": "Override the lane"},
    "override_reason": {"ru": "Основание (обязательно)", "en": "Reason (required)"},
    "override_saved": {"ru": "Коридор изменён.", "en": "Lane changed."},
    "new_lane": {"ru": "Новый коридор", "en": "New lane"},
    "conflict": {
        "ru": "Пока вы смотрели эту страницу, грузовик {truck} изменил(а) {actor} в {at}. "
        "Ваши данные не сохранены: проверьте изменения ниже и сохраните снова, если нужно.",
        "en": "While you had this page open, truck {truck} was changed by {actor} at {at}. "
        "Nothing of yours was saved: check the change below and save again if needed.",
    },
    "history": {"ru": "История решений по грузовику", "en": "Decisions on this truck"},
    "audit_title": {"ru": "Журнал решений", "en": "Audit log"},
    "audit_note": {
        "ru": "Журнал только пополняется: записи нельзя изменить или удалить.",
        "en": "The log is append-only: entries cannot be changed or deleted.",
    },
    "when": {"ru": "Когда (UTC)", "en": "When (UTC)"},
    "who": {"ru": "Кто", "en": "Who"},
    "action": {"ru": "Действие", "en": "Action"},
    "all_actions": {"ru": "Все действия", "en": "All actions"},
    "details": {"ru": "Подробности", "en": "Details"},
    "action_lane_assigned": {"ru": "назначен коридор", "en": "lane assigned"},
    "action_lane_overridden": {"ru": "коридор изменён", "en": "lane overridden"},
    "action_result_recorded": {"ru": "записан результат", "en": "result recorded"},
    "action_user_added": {"ru": "добавлен пользователь", "en": "user added"},
    "action_token_added": {"ru": "выдан API-токен", "en": "API token issued"},
    "older": {"ru": "Ранее →", "en": "Older →"},
    "action_watch_list_added": {"ru": "добавлено правило", "en": "watch-list entry added"},
    "action_watch_list_changed": {"ru": "изменено правило", "en": "watch-list entry changed"},
    "action_watch_list_retired": {"ru": "правило снято", "en": "watch-list entry retired"},
    "nav_watchlists": {"ru": "Списки наблюдения", "en": "Watch lists"},
    "wl_title": {"ru": "Списки наблюдения и приоритетный контроль", "en": "Watch lists"},
    "wl_note": {
        "ru": "Правила действуют раньше модели: грузовик с товаром по «красному» правилу идёт на "
        "досмотр при любой оценке, а по «зелёному» (если под него подпадает весь груз) "
        "выпускается. Причина правила — первое, что видит инспектор. Правила применяются при "
        "публикации очереди и при оценке грузовика через API; правило не удаляют, а снимают.",
        "en": "Rules act before the model: a truck with goods on a red rule is inspected "
        "whatever its score, one whose every item is on a green rule is released. The rule's "
        "reason is the first thing the officer reads. Rules apply when a queue is published "
        "and when the API scores a truck; an entry is retired, never deleted.",
    },
    "wl_active": {"ru": "Действующие", "en": "Active"},
    "wl_retired": {"ru": "Снятые", "en": "Retired"},
    "wl_none_active": {"ru": "Действующих правил нет.", "en": "No active entries."},
    "wl_none_retired": {"ru": "Снятых правил нет.", "en": "No retired entries."},
    "wl_add": {"ru": "Добавить правило", "en": "Add an entry"},
    "wl_add_button": {"ru": "Добавить", "en": "Add"},
    "wl_edit": {"ru": "Изменить", "en": "Edit"},
    "wl_save_change": {"ru": "Сохранить изменение", "en": "Save the change"},
    "wl_cancel": {"ru": "Отмена", "en": "Cancel"},
    "wl_back": {"ru": "← К спискам наблюдения", "en": "← Back to the watch lists"},
    "wl_retire": {"ru": "Снять", "en": "Retire"},
    "wl_retire_reason": {"ru": "Основание снятия", "en": "Reason to retire"},
    "wl_name": {"ru": "Название", "en": "Name"},
    "wl_lane_red": {"ru": "всегда досмотр", "en": "always inspect"},
    "wl_lane_green": {"ru": "всегда выпуск", "en": "always release"},
    "wl_criteria": {"ru": "Условия", "en": "Criteria"},
    "wl_criteria_hint": {
        "ru": "Нужно хотя бы одно условие; значения — через запятую или пробел. Правило "
        "срабатывает, когда выполнены все заданные условия (внутри условия — любое значение).",
        "en": "Name at least one criterion; separate values with commas or spaces. The rule "
        "matches when every criterion given matches (any value within a criterion).",
    },
    "wl_importer_ids": {"ru": "Импортёры", "en": "Importers"},
    "wl_hs_prefixes": {"ru": "Коды ТН ВЭД (начало)", "en": "HS code prefixes"},
    "wl_origin_countries": {"ru": "Страны происхождения", "en": "Origin countries"},
    "wl_dispatch_countries": {"ru": "Страны отправления", "en": "Dispatch countries"},
    "wl_crossings": {"ru": "Пункты пропуска", "en": "Crossings"},
    "wl_valid_from": {"ru": "Действует с", "en": "Valid from"},
    "wl_valid_until": {"ru": "Действует по", "en": "Valid until"},
    "wl_validity": {"ru": "Срок", "en": "Validity"},
    "wl_always": {"ru": "бессрочно", "en": "no end"},
    "wl_reason_ru": {"ru": "Причина для инспектора (рус.)", "en": "Reason for officers (Russian)"},
    "wl_reason_en": {
        "ru": "Причина для инспектора (англ., обязательно)",
        "en": "Reason for officers (English, required)",
    },
    "wl_reason_shown": {"ru": "Причина для инспектора", "en": "Reason officers read"},
    "wl_change_reason": {
        "ru": "Основание изменения (обязательно, в журнал)",
        "en": "Why this change (required, for the audit log)",
    },
    "wl_changed": {"ru": "Изменено", "en": "Changed"},
    "wl_retired_by": {"ru": "Снято", "en": "Retired"},
    "wl_read_only": {
        "ru": "Списки ведут старшие инспекторы; у вас — просмотр.",
        "en": "Supervisors keep the watch lists; you can view them.",
    },
    "wl_saved_added": {"ru": "Правило добавлено.", "en": "Entry added."},
    "wl_saved_changed": {"ru": "Правило изменено.", "en": "Entry changed."},
    "wl_saved_retired": {"ru": "Правило снято.", "en": "Entry retired."},
    "wl_history": {
        "ru": "История изменений — в журнале решений",
        "en": "Their history is in the audit log",
    },
    "dashboard_title": {"ru": "Показатели работы", "en": "Performance"},
    "trucks_total": {"ru": "Грузовиков в системе", "en": "Trucks in the system"},
    "share_inspected": {"ru": "Доля досмотренных", "en": "Share inspected"},
    "share_planned": {"ru": "Назначено к проверке", "en": "Planned for checks"},
    "hit_rate": {"ru": "Результативность:", "en": "Hit rate:"},
    "hit_targeted": {"ru": "модель", "en": "model"},
    "hit_random": {"ru": "случайный отбор", "en": "random share"},
    "hit_rule": {"ru": "правила и ручные решения", "en": "rules and overrides"},
    "duty_recovered": {"ru": "Доначислено пошлин", "en": "Duty recovered"},
    "overrides": {"ru": "Ручные изменения коридора", "en": "Manual overrides"},
    "lane_to_result": {"ru": "От назначения до результата", "en": "Lane to result"},
    "minutes": {"ru": "мин", "en": "min"},
    "chart_lanes": {"ru": "Грузовики по коридорам", "en": "Trucks by lane"},
    "chart_hits": {
        "ru": "Доля нарушений среди досмотренных",
        "en": "Violations among inspected trucks",
    },
    "chart_results": {"ru": "Результаты досмотров", "en": "Inspection results"},
    "no_data": {"ru": "Пока нет данных.", "en": "No data yet."},
    "inspections_n": {"ru": "досмотров", "en": "inspections"},
    "forbidden": {"ru": "Недостаточно прав", "en": "Not allowed"},
    "csrf_failed": {
        "ru": "Форма устарела или пришла не с этой страницы (нет CSRF-токена). Обновите "
        "страницу и повторите.",
        "en": "The form is stale or did not come from this site (CSRF token missing). Reload "
        "the page and try again.",
    },
    "not_found": {"ru": "Не найдено", "en": "Not found"},
    "back_to_queue": {"ru": "← К очереди", "en": "← Back to the queue"},
    "error": {"ru": "Ошибка", "en": "Error"},
    "yes": {"ru": "да", "en": "yes"},
    "no": {"ru": "нет", "en": "no"},
    "days_short": {"ru": "д", "en": "d"},
    "hours_short": {"ru": "ч", "en": "h"},
    "minutes_short": {"ru": "мин", "en": "min"},
    "signed_in_as": {"ru": "Вы вошли как", "en": "Signed in as"},
    "procedure_import": {"ru": "импорт", "en": "import"},
    "procedure_transit": {"ru": "транзит", "en": "transit"},
    "procedure_eaeu_internal": {"ru": "внутри ЕАЭС", "en": "EAEU internal"},
    "actor_cli": {"ru": "администратор (CLI)", "en": "administrator (CLI)"},
}


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)`` for one language; an unknown key shows itself (easy to spot)."""
    language = lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    def t(key: str, **values: object) -> str:
        text = MESSAGES.get(key, {}).get(language, key)
        return text.format(**values) if values else text

    return t
